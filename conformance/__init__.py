"""keras-rnn-conformance's harness: a case matrix run through real Keras (the oracle) and through an
implementation under test, judged with named per-dtype tolerances, diagnosed and reported.

Layered like refimpl: each module imports only modules above it in this list (tests/test_layout.py
checks that nothing imports in a circle and that the oracle never imports refimpl).

    case.py            one matrix case as data (a layer spec, shapes, dtype, mask, call protocol)
    cases_convlstm.py  the matrix's ConvLSTM1D/2D/3D cases
    cases_bidirectional.py  its Bidirectional cases
    cases.py           the whole matrix: SimpleRNN/LSTM/GRU, RNN(cell), stacks, and the two above
    cases_legacy.py    the matrices of Keras 0.2.0 and 1.2.2 (refimpl.legacy), for the historical oracle
    configs.py         reading serialized Keras configs: nested layers, dtype policies, flat values
    recorded.py        a recorded case (config, weights, calls, outputs) and how its calls are played
    data.py            a case's deterministic weights, inputs, masks, states and dropout masks
    tolerances.py      the named tolerances, per dtype
    compare.py         outputs against expected ones: count, shape, dtype, then values
    deviations.py      known deviations as data (deviations.json), matched by id globs
    fixtures.py        the fixture file format: write, check, load (FIXTURES.md)
    features.py        what a recorded case exercises: the table's columns, --cases quick
    conventions.py     gate orders and layouts of six frameworks, as data
    machine.py         what machine this is
    oracle/            Keras: live.py (KerasOracle, generate), fixture.py (FixtureOracle, set lookup),
                       worker.py + remote.py + wire.py (Keras in a worker process), historical.py +
                       theano_worker.py (Keras 0.2.0 / 1.2.2 on Theano, in a venv of their own)
    adapters/          the contract and loading (__init__.py); refimpl, torch.nn, Flax NNX (flax_nnx.py),
                       Keras on a backend, template.py
    diagnose.py        a failure's likely cause: refimpl replayed with porting mistakes made on purpose
    judge.py           a recorded case through an implementation: its status; many cases in processes
    session.py         one run as the CLI and the pytest plugin describe it (impl, oracle, cases)
    report_html.py     a JSON report as one HTML page
    report.py          all text output (failures, tables, progress, rerun lines) and the JSON report
    diff.py            which cases moved between two fixture sets
    drift.py           an old (Keras 0.2 / 1.2.2) set's cases ported to a later Keras, for diff
    strategies.py      hypothesis strategies for configs, shapes, masks, states and weights
    cli.py             ``rnn-conformance`` / ``python -m conformance`` (__main__.py)
    pytest_plugin.py   the suite in an adopter's pytest run: options, header, one test per case
    test_implementation.py  that test (``pytest --pyargs conformance``)
    gpu/               cuDNN rules, dispatch evidence and the GPU runner (docs/gpu.md)
"""
