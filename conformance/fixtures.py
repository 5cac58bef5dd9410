"""Golden fixture sets: the case matrix's inputs and Keras's outputs, written once by Keras and
replayed anywhere without it. The format is documented for other languages in FIXTURES.md.

    <set>/manifest.json     versions, device, dtypes, seed rule, case count, sha256 of every file
    <set>/cases.json        one entry per case: id, config, calls, array names, status
    <set>/arrays/<family>.npz   the arrays (NumPy .npy files in a zip), keyed "<case>/<name>"

One generator writes sets (``conformance.oracle.live.KerasOracle.generate``, through ``write``);
``load`` checks the schema and every checksum before it returns anything; a missing, truncated or
altered file raises ``FixtureError`` naming it. Finding a set by name: ``conformance.oracle.fixture``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import platform
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from conformance import configs
from conformance.recorded import RESET, RecordedCase

SCHEMA = "keras-rnn-conformance/fixtures/2"  # 2 added cotangents and gradients (FIXTURES.md)
READABLE = ("keras-rnn-conformance/fixtures/1", SCHEMA)


class FixtureError(Exception):
    """A fixture set that cannot be trusted: the message names the file and what is wrong."""


# --- writing ----------------------------------------------------------------------------------------
def entry(rec: RecordedCase, key: str, arrays: dict[str, dict[str, np.ndarray]]) -> dict:
    """A recorded case as its cases.json entry; its arrays go to ``arrays[<family file>]`` as
    ``<key>/<name>``: inputs, weights, states and dropout masks in the case's dtype, outputs in the
    dtype the oracle returned them in."""
    family = _file_key(rec.family)
    store = arrays.setdefault(family, {})
    bfloat16: list[str] = []

    def put(name: str, value: Any, cast: bool = True) -> Any:
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            return [put(f"{name}.{i}", v, cast) for i, v in enumerate(value)]
        value = np.asarray(value)
        if cast and configs.is_float(value.dtype):
            value = value.astype(configs.numpy_dtype(rec.data_dtype))
        if value.dtype.name == "bfloat16":  # .npy has no bfloat16: stored as float32 (exact), and listed
            bfloat16.append(f"{key}/{name}")
            value = value.astype(np.float32)
        store[f"{key}/{name}"] = value
        return f"{key}/{name}"

    out = {"id": rec.id, "family": rec.family, "dtype": rec.dtype, "config": rec.config,
           "training": rec.training, "arrays": f"arrays/{family}.npz",
           "weights": put("weights", rec.weights), "dropout_masks": put("dropout", rec.dropout_masks),
           "calls": [c if c == RESET else
                     {k: put(f"call{i}.{k}", c[k]) for k in ("inputs", "mask", "initial_state")}
                     for i, c in enumerate(rec.calls)]}
    if rec.status == "ok":
        out.update(status="ok", error="", outputs=put("outputs", rec.outputs, cast=False))
    else:  # Keras fails on a valid configuration: recorded, replayed as such
        out.update(status=rec.status, error=rec.error, outputs=[])
    gradients = None
    if rec.gradients is not None:
        gradients = {k: put(f"grad.{k}", rec.gradients[k], cast=False) for k in ("inputs", "initial_state", "weights")}
    out.update(cotangents=put("cotangents", rec.cotangents, cast=False), gradients=gradients,
               gradient_error=rec.gradient_error, bfloat16=sorted(bfloat16))
    return out


def write(out_dir: Path, arrays: dict[str, dict[str, np.ndarray]], entries: list[dict], manifest: dict) -> Path:
    """Write a set: arrays/<family>.npz, cases.json, and manifest.json (``manifest`` plus schema,
    versions, dtypes, the case count and every file's sha256)."""
    out_dir = Path(out_dir)
    (out_dir / "arrays").mkdir(parents=True, exist_ok=True)
    files = {}
    for family, store in sorted(arrays.items()):
        path = out_dir / "arrays" / f"{family}.npz"
        np.savez_compressed(path, **dict(sorted(store.items())))  # fixed zip timestamps: same bytes
        files[f"arrays/{family}.npz"] = _sha256(path)
    (out_dir / "cases.json").write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    files["cases.json"] = _sha256(out_dir / "cases.json")
    manifest = {"schema": SCHEMA, "created": datetime.date.today().isoformat(), "numpy": np.__version__,
                "python": platform.python_version(), "dtypes": sorted({e["dtype"] for e in entries}),
                **manifest, "cases": len(entries), "files": files}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
    return out_dir


def _file_key(family: str) -> str:
    return family.replace("(", "_").replace(")", "")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- reading ----------------------------------------------------------------------------------------
def check(set_dir: Path) -> dict:
    """Verify a set's schema and every file's sha256; return the manifest, or raise FixtureError."""
    set_dir = Path(set_dir)
    manifest_path = set_dir / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise FixtureError(f"{manifest_path}: missing") from None
    except json.JSONDecodeError as e:
        raise FixtureError(f"{manifest_path}: not valid JSON ({e})") from None
    if manifest.get("schema") not in READABLE:
        raise FixtureError(f"{manifest_path}: schema={manifest.get('schema')!r}, expected one of {READABLE}")
    for key in ("oracle", "device", "files", "cases", "dtypes"):
        if key not in manifest:
            raise FixtureError(f"{manifest_path}: no {key!r} entry")
    for name, digest in manifest["files"].items():
        path = set_dir / name
        if not path.is_file():
            raise FixtureError(f"{path}: listed in the manifest but missing")
        actual = _sha256(path)
        if actual != digest:
            raise FixtureError(f"{path}: sha256 {actual[:16]}... does not match the manifest's {digest[:16]}... "
                               "(altered or truncated)")
    listed = set(manifest["files"])
    for path in set_dir.rglob("*"):
        rel = path.relative_to(set_dir).as_posix()
        if path.is_file() and rel != "manifest.json" and rel not in listed:
            raise FixtureError(f"{path}: not listed in the manifest")
    return manifest


def load(set_dir: Path) -> tuple[dict, list[RecordedCase]]:
    """The manifest and the cases of a checked set, arrays loaded without pickle."""
    set_dir = Path(set_dir)
    manifest = check(set_dir)
    entries = json.loads((set_dir / "cases.json").read_text())
    if len(entries) != manifest["cases"]:
        raise FixtureError(f"{set_dir / 'cases.json'}: {len(entries)} cases, the manifest says {manifest['cases']}")
    archives: dict[str, Any] = {}

    def arrays(name: str) -> Any:
        if name not in archives:
            try:
                archives[name] = np.load(set_dir / name, allow_pickle=False)
            except (zipfile.BadZipFile, ValueError, OSError) as e:
                raise FixtureError(f"{set_dir / name}: unreadable ({e})") from None
        return archives[name]

    out = []
    for e in entries:
        npz = arrays(e["arrays"])
        bfloat16, unreadable = set(e.get("bfloat16", [])), []

        def get(ref: Any) -> Any:
            if ref is None:
                return None
            if isinstance(ref, list):
                return [get(r) for r in ref]
            if ref not in npz.files:
                raise FixtureError(f"{set_dir / e['arrays']}: no array {ref!r} (case {e['id']})")
            if ref in bfloat16:
                try:
                    return npz[ref].astype(configs.numpy_dtype("bfloat16"))
                except ImportError as err:  # the case stays loadable; judging it needs ml_dtypes
                    unreadable[:] = [str(err)]
            return npz[ref]

        calls = [c if c == RESET else {k: get(v) for k, v in c.items()} for c in e["calls"]]
        grads = e.get("gradients")  # schema 2
        out.append(RecordedCase(e["id"], e["family"], e["dtype"], e["config"], calls, get(e["weights"]),
                                e["training"], get(e["dropout_masks"]), get(e["outputs"]), e["status"], e["error"],
                                get(e.get("cotangents")), None if grads is None else {k: get(v) for k, v in grads.items()},
                                e.get("gradient_error", ""), "; ".join(unreadable)))
    return manifest, out


def oracle_name(manifest: dict) -> str:
    """The name deviations.json uses: keras-tensorflow, keras-jax, tf-keras-tensorflow, keras-torch-gpu..."""
    gpu = "-gpu" if manifest.get("device", {}).get("kind") == "gpu" else ""  # GPU sets (docs/gpu.md)
    return f"{manifest['oracle'].get('package', 'keras')}-{manifest['oracle']['backend']}{gpu}"


def keras_major(manifest: dict) -> int:
    return int(manifest["oracle"]["keras"].split(".")[0])
