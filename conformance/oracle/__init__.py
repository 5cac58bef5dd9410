"""The oracle: Keras, live or through the fixture sets it recorded.

    live.py      KerasOracle: a matrix case built and run in the installed Keras (any version), recorded
                 as a RecordedCase; ``generate`` writes fixture sets
    fixture.py   FixtureOracle: a recorded set, found by name or directory, replayed without Keras
    worker.py    a Keras worker process (Keras on another backend, or in another environment)
    remote.py    the parent's side of a worker
    wire.py      the messages between them (npz, no pickle)
    historical.py    Keras 0.2.0 / 1.2.2 on Theano as the oracle, through theano_worker.py, a script
                     run by that Keras's own venv (old NumPy, no package of ours but wire.py)

Nothing in this package imports the implementation under test.
"""
