"""The LSTM/GRU matrix on a CUDA GPU: which kernel ran, its error against the CPU fixtures, and
GPU fixture sets. Run on the device machine (docs/gpu.md has the commands):

    python -m conformance.gpu.run --out DIR [--impls keras-torch,keras-jax,torch.nn]
        [--tf32 off,on] [--dtypes float32,float64] [--scope eligible|all] [--limit N] [--no-sweep]

For each implementation (Keras 3 on torch, Keras 3 on JAX, torch.nn itself) and TF32 setting it
replays the canonical CPU set's LSTM/GRU cases (inputs and weights as recorded) on the GPU, with
``conformance/gpu/dispatch.py`` recording which kernel ran and ``conformance/gpu/cudnn.py`` saying which
should have. float32 runs once per TF32 setting; other dtypes once ("n/a"). A TF32 sweep runs
LSTM and GRU at 1 to 1000 steps against a float64 refimpl reference. It writes

    DIR/report.json       device, settings, one row per case run, the error table, the sweep
    DIR/summary.txt       the tables printed at the end
    DIR/gpu-sets.tar.gz   one fixture set per Keras backend and TF32 setting (fixtures.py's format,
                          plus each case's "dispatch"); unpack under fixtures/

``--device cpu`` is a dry run of the same pipeline (no cuDNN can run; the sets say cpu).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from conformance import configs, fixtures
from conformance.adapters import Implementation, load
from conformance.adapters.torch_nn import TorchNN
from conformance.compare import compare
from conformance.gpu import cudnn, dispatch
from conformance.machine import cpu_device
from conformance.oracle.fixture import CANONICAL, find_set
from conformance.recorded import RESET
from conformance.tolerances import tolerance_for

IMPLS = {"keras-torch": "torch", "keras-jax": "jax", "torch.nn": "torch.nn"}  # name -> cudnn.BACKENDS
FAMILIES = ("LSTM", "GRU", "Bidirectional(LSTM)", "Bidirectional(GRU)")
TORCH_NN_FAMILIES = FAMILIES[:2] + ("SimpleRNN",)
SWEEP_STEPS = (1, 10, 100, 1000)
SWEEP_SHAPE = {"batch": 8, "features": 32, "units": 64}


# --- torch.nn on a device -------------------------------------------------------------------------
class TorchNNOnDevice(TorchNN):
    """torch.nn on ``device``, each forward pass profiled (``last_dispatch``). It reuses TorchNN.run
    and swaps in a module that moves tensors across; TorchNN(device=...) would make this go."""

    def __init__(self, device: str = "cuda"):
        super().__init__()
        self.device, self.name, self.last_dispatch = device, f"torch.nn-{device}", None

    def _module(self, name: str, cfg: dict, input_dim: int, dtype: Any) -> Any:
        return _OnDevice(super()._module(name, cfg, input_dim, dtype).to(self.device), self)


class _OnDevice:
    def __init__(self, module: Any, owner: TorchNNOnDevice):
        self.module, self.owner = module, owner

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)  # copies the CPU tensors into the device's parameters

    def __call__(self, x: Any, hx: Any) -> Any:
        to = lambda t: t.to(self.owner.device)  # noqa: E731
        hx = None if hx is None else tuple(map(to, hx)) if isinstance(hx, tuple) else to(hx)
        (y, state), evidence = dispatch.profile_torch(self.module, to(x), hx)
        self.owner.last_dispatch = {"path": evidence["path"], "evidence": dispatch._describe(
            {"fn": f"torch.nn.{type(self.module).__name__}", **evidence}), "calls": 1}
        back = tuple(s.cpu() for s in state) if isinstance(state, tuple) else state.cpu()
        return y.cpu(), back


# --- the runs -----------------------------------------------------------------------------------------
class Runner:
    """One implementation at one TF32 setting: run a recorded case, say which kernel ran."""

    def __init__(self, impl: str, tf32: str, device: str, workdir: Path):
        self.impl, self.tf32, self.backend = impl, tf32, IMPLS[impl]
        if impl == "torch.nn":
            self.flags = dispatch.set_torch_tf32(tf32) if device == "gpu" else {}
            self.adapter = TorchNNOnDevice("cuda" if device == "gpu" else "cpu")
            self.log, self.versions = None, {"torch": self.adapter.version}
        else:
            self.adapter, self.log = dispatch.traced_keras(self.backend, workdir=workdir, device=device, tf32=tf32)
            self.versions = self.adapter.versions()
            self.flags = next((r for r in self.log.take() if r.get("fn") == "install"), {})
        self.contract = Implementation(self.adapter, impl)

    def run(self, rec: Any) -> tuple[list | None, str, dict]:
        """(outputs or None, error text, dispatch) for one recorded case."""
        if self.log:
            self.log.take()
        try:
            outputs, error = self.contract.run(rec), ""
        except Exception as e:  # noqa: BLE001 - reported per case, the run goes on
            outputs, error = None, f"{type(e).__name__}: {str(e)[:400]}"
        found = dispatch.classify(self.log.take()) if self.log else (self.adapter.last_dispatch or {})
        return outputs, error, found or {"path": "none", "evidence": "", "calls": 0}

    def close(self) -> None:
        if self.log:
            self.adapter.close()


def _mask(rec: Any) -> Any:
    return next((c["mask"] for c in rec.calls if c != "reset_state" and c["mask"] is not None), None)


def select(recorded: list, impl: str, *, scope: str, dtypes: tuple[str, ...]) -> list:
    families = TORCH_NN_FAMILIES if impl == "torch.nn" else FAMILIES
    picked = [r for r in recorded if r.family in families and r.dtype in dtypes and r.status == "ok"]
    if scope == "eligible":
        picked = [r for r in picked if cudnn.eligible(r.config, backend=IMPLS[impl], mask=_mask(r)) is True]
    return picked


def run_matrix(runner: Runner, recs: list, tf32_label: str) -> tuple[list[dict], list[tuple]]:
    rows, produced = [], []
    for rec in recs:
        why = runner.contract.why_not(rec)
        row = {"id": rec.id, "family": rec.family, "dtype": rec.dtype, "impl": runner.impl, "tf32": tf32_label,
               "steps": int(next(c for c in rec.calls if c != RESET)["inputs"].shape[1]),
               "expected": cudnn.expected_path(rec.config, backend=runner.backend, mask=_mask(rec))}
        if why:
            rows.append({**row, "path": "skip", "error": why})
            continue
        outputs, error, found = runner.run(rec)
        row.update(path=found["path"], evidence=found["evidence"], error=error)
        if outputs is not None:
            c = compare(rec.outputs, outputs, tolerance_for(configs.precision(rec.config, rec.dtype)))
            row.update(max_abs=c.max_abs, max_rel=c.max_rel, within_tolerance=c.ok, message=c.message)
        rows.append(row)
        produced.append((rec, outputs, error, {"path": found["path"], "evidence": found["evidence"]}))
    return rows, produced


def sweep_case(layer: str, steps: int) -> tuple[dict, list, np.ndarray]:
    """A float32 config, weights and inputs for the TF32 sweep (deterministic per layer and T)."""
    b, f, u = SWEEP_SHAPE["batch"], SWEEP_SHAPE["features"], SWEEP_SHAPE["units"]
    g = {"LSTM": 4, "GRU": 3}[layer]
    rng = np.random.default_rng(zlib.crc32(f"{layer}-{steps}".encode()))
    scale = 1 / np.sqrt(u)  # torch's default init range: keeps 1000 steps of the recurrence O(1)
    bias_shape = (g * u,) if layer == "LSTM" else (2, g * u)
    weights = [rng.uniform(-scale, scale, s).astype("float32") for s in ((f, g * u), (u, g * u), bias_shape)]
    x = rng.uniform(-1, 1, (b, steps, f)).astype("float32")  # (B, T, F)
    config = {"module": "keras.layers", "class_name": layer, "registered_name": None,
              "config": {"units": u, "return_sequences": True, "dtype": "float32"},
              "build_config": {"input_shape": [b, steps, f]}}
    return config, weights, x


def _as64(config: dict) -> dict:
    return {**config, "config": {**config["config"], "dtype": "float64"}}


def run_sweep(runner: Runner, refimpl: Any) -> list[dict]:
    rows = []
    for layer in ("LSTM", "GRU"):
        for steps in SWEEP_STEPS:
            config, weights, x = sweep_case(layer, steps)
            ref = refimpl.run(_as64(config), [w.astype("float64") for w in weights], x.astype("float64"))[0]
            if runner.log:
                runner.log.take()
            try:
                y = runner.adapter.run(config, weights, x)[0]
                err = float(np.abs(y.astype("float64") - ref).max())
            except Exception as e:  # noqa: BLE001
                err, y = float("nan"), None
                print(f"sweep {runner.impl} {layer} T={steps}: {type(e).__name__}: {str(e).splitlines()[0][:300]}",
                      file=sys.stderr)
            found = dispatch.classify(runner.log.take()) if runner.log else (runner.adapter.last_dispatch or {})
            rows.append({"impl": runner.impl, "tf32": runner.tf32, "layer": layer, "steps": steps,
                         "max_abs_vs_float64": err, "path": found.get("path", "none")})
    return rows


def float32_floor(refimpl: Any) -> list[dict]:
    """refimpl in float32 against refimpl in float64: the error float32 alone brings."""
    rows = []
    for layer in ("LSTM", "GRU"):
        for steps in SWEEP_STEPS:
            config, weights, x = sweep_case(layer, steps)
            ref = refimpl.run(_as64(config), [w.astype("float64") for w in weights], x.astype("float64"))[0]
            y = refimpl.run(config, weights, x)[0]
            rows.append({"impl": "refimpl-cpu", "tf32": "n/a", "layer": layer, "steps": steps,
                         "max_abs_vs_float64": float(np.abs(y - ref).max()), "path": "numpy"})
    return rows


# --- device metadata and fixture sets ------------------------------------------------------------------
def device_metadata(device: str) -> dict:
    meta = {**cpu_device(), "kind": device}
    if device != "gpu":
        return meta
    import torch

    meta.update(gpu=torch.cuda.get_device_name(0), capability="%d.%d" % torch.cuda.get_device_capability(0),
                cuda=torch.version.cuda, cudnn=str(torch.backends.cudnn.version()), torch=torch.__version__)
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
        meta["driver"] = out.stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError) as e:
        meta["driver"] = f"unknown ({type(e).__name__})"
    return meta


def write_set(out_dir: Path, produced: list[tuple], *, oracle: dict, device: dict, source: Path,
              selection: str) -> Path:
    """A fixture set in fixtures.py's format from cases replayed on another device; each entry also
    says which kernel ran (``dispatch``)."""
    arrays: dict[str, dict] = {}
    entries = []
    for n, (rec, outputs, error, found) in enumerate(produced):
        ran = dataclasses.replace(rec, outputs=outputs or [], status="ok" if outputs is not None else "oracle-raised",
                                  error="" if outputs is not None else error[:300])
        entries.append({**fixtures.entry(ran, f"c{n:04d}", arrays), "dispatch": found})
    fixtures.write(out_dir, arrays, entries, {
        "generator": "python -m conformance.gpu.run", "oracle": oracle, "device": device, "not_generated": {},
        "seed": f"inputs, weights and masks copied from {source.name} (its cases.json sha256 "
                f"{fixtures._sha256(source / 'cases.json')[:16]}...)",
        "selection": selection})
    fixtures.check(out_dir)
    return Path(out_dir)


def _slug(text: str) -> str:
    return re.sub(r"[^\w.-]+", "-", str(text)).strip("-")


def set_name(versions: dict, device: dict, tf32: str) -> str:
    backend = versions["backend"]
    where = "gpu-" + _slug(device.get("gpu", "gpu").replace("NVIDIA ", "")) if device["kind"] == "gpu" else "cpu-dry-run"
    return f"keras-{versions['keras']}_{backend}-{_slug(versions.get(backend, '?'))}_{where}_tf32-{tf32}".lower()


# --- tables -------------------------------------------------------------------------------------------
def error_table(rows: list[dict]) -> list[dict]:
    """Max abs error vs the CPU fixtures per implementation x TF32 x layer x dtype x steps."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        if "max_abs" not in r:
            continue
        g = groups.setdefault((r["impl"], r["tf32"], r["family"], r["dtype"], r["steps"]),
                              {"cases": 0, "paths": Counter(), "max_abs": 0.0, "worst": "", "over_tolerance": 0})
        g["cases"] += 1
        g["paths"][r["path"]] += 1
        g["over_tolerance"] += not r["within_tolerance"]
        if r["max_abs"] >= g["max_abs"]:
            g["max_abs"], g["worst"] = r["max_abs"], r["id"]
    return [{"impl": k[0], "tf32": k[1], "family": k[2], "dtype": k[3], "steps": k[4], **v,
             "paths": dict(v["paths"])} for k, v in sorted(groups.items())]


def render(table: list[dict], sweep: list[dict], mismatches: list[dict], skipped: int) -> str:
    lines = [f"{'impl':<12} {'tf32':<4} {'layer':<20} {'dtype':<8} {'T':>4} {'cases':>5}  {'paths':<28} "
             f"{'max abs err':>11} {'>tol':>4}"]
    for t in table:
        paths = ", ".join(f"{k} {v}" for k, v in sorted(t["paths"].items()))
        lines.append(f"{t['impl']:<12} {t['tf32']:<4} {t['family']:<20} {t['dtype']:<8} {t['steps']:>4} "
                     f"{t['cases']:>5}  {paths:<28} {t['max_abs']:>11.2e} {t['over_tolerance']:>4}")
    if sweep:
        lines += ["", "TF32 sweep: max abs error against refimpl float64 "
                      f"(batch {SWEEP_SHAPE['batch']}, {SWEEP_SHAPE['features']} features, {SWEEP_SHAPE['units']} units)",
                  f"{'impl':<12} {'tf32':<4} {'layer':<5} " + " ".join(f"{'T=' + str(t):>10}" for t in SWEEP_STEPS) + "  paths"]
        keyed: dict[tuple, list] = {}
        for s in sweep:
            keyed.setdefault((s["impl"], s["tf32"], s["layer"]), []).append(s)
        for (impl, tf32, layer), ss in keyed.items():
            lines.append(f"{impl:<12} {tf32:<4} {layer:<5} " + " ".join(f"{s['max_abs_vs_float64']:>10.2e}" for s in ss)
                         + "  " + ",".join(sorted({s["path"] for s in ss})))
    lines += ["", f"dispatch: {len(mismatches)} case runs took another path than cudnn.py expects; "
                  f"{skipped} skipped by the adapter"]
    lines += [f"  {m['impl']} tf32={m['tf32']}: expected {m['expected']}, ran {m['path']}: {m['id']}"
              for m in mismatches[:15]]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m conformance.gpu.run", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="report.json, summary.txt, gpu-sets.tar.gz go here")
    p.add_argument("--impls", default="keras-torch,keras-jax,torch.nn")
    p.add_argument("--tf32", default="off,on", help="comma-separated: off, on, default")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--scope", choices=["eligible", "all"], default="eligible",
                   help="eligible: cases cudnn.py expects on cuDNN; all: every LSTM/GRU case (checks fall-backs too)")
    p.add_argument("--set", default=CANONICAL, help="the CPU fixture set to replay (a shipped set's name or a directory)")
    p.add_argument("--limit", type=int, default=0, help="at most N cases per implementation (0: all)")
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--device", choices=["gpu", "cpu"], default="gpu", help="cpu: a dry run of the pipeline")
    args = p.parse_args(argv)
    impls, modes = args.impls.split(","), args.tf32.split(",")
    dtypes = tuple(args.dtypes.split(","))
    bad = [i for i in impls if i not in IMPLS] + [m for m in modes if m not in dispatch.TF32_MODES]
    if bad:
        p.error(f"unknown {bad}: impls are {sorted(IMPLS)}, tf32 modes {dispatch.TF32_MODES}")
    if args.device == "gpu":
        import torch

        if not torch.cuda.is_available():
            print("no CUDA GPU on this machine: run this on the device machine (docs/gpu.md), "
                  "or pass --device cpu for a dry run", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    source = find_set(args.set)
    _, recorded = fixtures.load(source)
    device = device_metadata(args.device)
    work = Path(tempfile.mkdtemp(prefix="gpu_run-"))
    refimpl = load("refimpl").adapter
    rows, sweep, runs = [], [] if args.no_sweep else float32_floor(refimpl), []
    for impl in impls:
        recs = select(recorded, impl, scope=args.scope, dtypes=dtypes)
        recs = recs[:args.limit] if args.limit else recs
        for i, mode in enumerate(modes):
            start = time.perf_counter()
            runner = Runner(impl, mode, args.device, work)
            todo = [r for r in recs if r.dtype == "float32" or i == 0]  # TF32 touches float32 only
            produced = []
            for is_f32 in (True, False):
                got, made = run_matrix(runner, [r for r in todo if (r.dtype == "float32") == is_f32],
                                       mode if is_f32 else "n/a")
                rows, produced = rows + got, produced + made
            runs.append((impl, mode, runner.versions, runner.flags, produced))
            if not args.no_sweep:
                sweep += run_sweep(runner, refimpl)
            runner.close()
            print(f"{impl} tf32={mode}: {len(todo)} cases in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    table = error_table(rows)
    mismatches = [r for r in rows if r["path"] not in ("skip", r["expected"])]
    skipped = sum(r["path"] == "skip" for r in rows)
    summary = render(table, sweep, mismatches, skipped)
    sets_dir = work / "sets"
    for impl, mode, versions, flags, produced in runs:
        if impl == "torch.nn" or not produced:
            continue
        backend = versions["backend"]
        oracle = {"keras": versions["keras"], "package": "keras", "backend": backend, backend: versions.get(backend)}
        set_device = {**device, "tf32": mode, "precision_flags": {k: v for k, v in flags.items() if k != "fn"}}
        write_set(sets_dir / set_name(versions, device, mode), produced, oracle=oracle, device=set_device, source=source,
                  selection=f"{'/'.join(FAMILIES)} cases of {args.set}, scope={args.scope}, dtypes={','.join(dtypes)}")
    if sets_dir.exists():
        with tarfile.open(args.out / "gpu-sets.tar.gz", "w:gz") as tar:
            for d in sorted(sets_dir.iterdir()):
                tar.add(d, arcname=d.name)
    report = {"device": device, "settings": vars(args) | {"out": str(args.out)}, "rows": rows, "table": table,
              "sweep": sweep, "dispatch_mismatches": mismatches,
              "workers": [{"impl": i, "tf32": m, "versions": v, "flags": f} for i, m, v, f, _ in runs]}
    shutil.rmtree(work, ignore_errors=True)  # the sets are in the tarball, the dispatch in the report
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (args.out / "summary.txt").write_text(json.dumps(device, default=str) + "\n\n" + summary + "\n")
    print(json.dumps(device, default=str))
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
