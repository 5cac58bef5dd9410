"""keras-rnn-conformance's harness: a case matrix run through real Keras (the oracle) and refimpl.

Entry points: ``rnn-conformance`` / ``python -m conformance`` (see ``conformance.cli``), and the
live pytest suite in ``tests/live``.
"""
