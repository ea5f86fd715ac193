"""Fuzz the netx hdf5 loader with corrupted variants of the fixtures (issue 10, item 5).

Every variant goes through the real entry point, ``netx.hdf5.Network(net_config=...)``
(which builds the Lava processes without running them). Each one either loads, when the
corruption leaves a genuinely valid network, or raises :class:`NetxFormatError` naming the
file, and, for a record's field, the layer and the field. Variants that are certainly
invalid (non-finite numbers, values beyond their bit widths, unknown types, sizes that
disagree ...) must raise. No variant may take long or allocate much memory.

The variants are generated deterministically (seeded) from the lava-dl 0.6 fixtures in
``../shared/fixtures/lava_dl_0.6`` (skipped when absent) and from this repository's
``tests/fixtures/lava_dl_0.6``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import time
import tracemalloc
import typing as ty

import h5py
import numpy as np
import pytest

import lava_dl  # noqa: F401  (installs the Python 3.11 fix for lava-nc)
from lava_dl.netx import NetxFormatError, hdf5

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "fixtures" / "lava_dl_0.6"
LOCAL = REPO / "tests" / "fixtures" / "lava_dl_0.6"

SHARED_BASES = ("mnist.net", "tiny.net", "pilotnet_sdnn/network.net", "oxford/Trained/network.net")
LOCAL_BASES = ("cuba_recurrent.net", "cuba_delay.net", "cuba_affine_nodyn.net", "adrf.net", "rf.net",
               "sdnn_cum_error.net", "sdnn_dense.net")

#: Field-level variants drawn per base file (from every field x every applicable corruption).
PER_BASE = 30
SEED = 20240610
#: Seconds and bytes (traced by tracemalloc) one variant may take.
MAX_SECONDS = 10.0
MAX_TRACED_BYTES = 256 << 20

#: Fields whose removal leaves a valid record (lava-dl does not need them, or they have defaults).
OPTIONAL = {"inFeatures", "outFeatures", "inChannels", "outChannels", "kernelSize", "bias", "delay",
            "neuron/gradedSpike", "neuron/refDelay", "neuron/theta", "neuron/wgtExp", "neuron/scaleRho",
            "neuron/tauRho", "neuron/activation", "neuron/cumError", "neuron", "bias_rec"}
#: Real-valued (not integer) fields: a fraction is valid there.
REAL_VALUED = {"neuron/scaleRho", "neuron/tauRho"}


@dataclasses.dataclass
class Case:
    """One variant: ``make(tmp)`` writes it and returns the ``net_config`` to load."""

    name: str
    make: ty.Callable[[pathlib.Path], ty.Any]
    must_fail: bool
    layer: int | None = None  # expected location of the error (None: any / file level)
    field: str | tuple[str, ...] | None = None  # expected field (or the fields that may be blamed)
    file_level: bool = False  # the error concerns the whole file (no layer or field to name)
    kwargs: dict = dataclasses.field(default_factory=dict)


def _bases() -> list[pathlib.Path]:
    out = [SHARED / b for b in SHARED_BASES if (SHARED / b).is_file()]
    return out + [LOCAL / b for b in LOCAL_BASES if (LOCAL / b).is_file()]


def _fields(path: pathlib.Path) -> list[tuple[int, str, h5py.Dataset]]:
    """``(layer index, field, dataset info)`` of every dataset inside ``layer/<i>``."""
    found = []
    with h5py.File(path, "r") as f:
        for name in sorted(f["layer"], key=int):
            group = f["layer"][name]

            def visit(key, obj, index=int(name)):
                if isinstance(obj, h5py.Dataset):
                    found.append((index, key, (obj.shape, obj.dtype)))

            group.visititems(visit)
    return found


def _copy(base: pathlib.Path, tmp: pathlib.Path, tag: str) -> pathlib.Path:
    dst = tmp / f"{tag}.net"
    shutil.copyfile(base, dst)
    return dst


def _edit(base, tag, edit):
    """A ``make`` that copies ``base`` and applies ``edit(h5py.File)``."""

    def make(tmp):
        path = _copy(base, tmp, tag)
        with h5py.File(path, "a") as f:
            edit(f)
        return path

    return make


def _replace(group: h5py.Group, key: str, data, dtype=None) -> None:
    del group[key]
    if dtype is None:
        group.create_dataset(key, data=data)
    else:
        group.create_dataset(key, data=data, dtype=dtype)


def _set_first(value):
    def change(arr):
        out = np.array(arr, dtype=np.float64)
        out.reshape(-1)[0] = value
        return out
    return change


def _field_variants(base: pathlib.Path, index: int, field: str, info, layer_type: str) -> list[Case]:
    """Every corruption that applies to ``layer/<index>/<field>``."""
    shape, dtype = info
    numeric = dtype.kind in "iufb"
    full = f"layer/{index}/{field}"
    tag = f"{base.parent.name}_{base.stem}_{index}_{field.replace('/', '.')}"
    role_input = layer_type == "input"

    def mutate(name, transform, must_fail, dtype=None):
        def edit(f):
            grp, key = f[full].parent, full.rsplit("/", 1)[1]
            _replace(grp, key, transform(f[full][()]), dtype)
        # a size that disagrees with the weight: either side may be named
        blamed = (field, "weight", "weight/real") if field == "shape" else field
        return Case(f"{tag}:{name}", _edit(base, f"{tag}_{name}", edit), must_fail, index, blamed)

    cases = []
    required = field not in OPTIONAL and not (role_input and field in ("weight", "bias"))
    if field.startswith("weight/") or field.startswith("weight_rec/"):
        required = True
    if field == "neuron/vThMant" and layer_type != "input":
        required = None  # a sigma output layer reads no threshold
    blamed = (field, field.split("/")[0]) if field.startswith("weight") else field
    cases.append(Case(f"{tag}:missing", _edit(base, f"{tag}_missing", lambda f: f.__delitem__(full)),
                      bool(required), index if required else None, blamed if required else None))
    if numeric:
        cases.append(mutate("nan", _set_first(np.nan), True))
        cases.append(mutate("inf", _set_first(-np.inf if len(field) % 2 else np.inf), True))
        if field not in REAL_VALUED:
            cases.append(mutate("fraction", lambda a: np.asarray(a, np.float64) + 0.5, True))
        cases.append(mutate("huge", _set_first(2.0 ** 30), field not in REAL_VALUED | {"stride"}))
        cases.append(mutate("empty", lambda a: np.zeros((0,), np.float64), True))
        cases.append(mutate("text", lambda a: "garbage", True, h5py.string_dtype()))
        if np.prod(shape, dtype=np.int64) > 1:
            must = field.startswith("weight")
            cases.append(mutate("scalar", lambda a: np.asarray(a).reshape(-1)[0], must))
            cases.append(mutate("extra_axis", lambda a: np.asarray(a)[None, ..., None], must))
        if field.startswith("weight") and len(shape) == 2 and shape[1] > 1:
            cases.append(mutate("one_column_less", lambda a: np.asarray(a)[:, :-1], True))
            cases.append(mutate("one_row_less", lambda a: np.asarray(a)[:-1], True))
        if field.startswith("weight"):
            cases.append(mutate("beyond_8_bit", _set_first(300.0), True))
        if field == "bias":
            cases.append(mutate("beyond_bias_bits", _set_first(2.0 ** 24), True))
        if field == "shape":
            cases.append(mutate("declared_1e9", lambda a: np.full(np.shape(a), 10 ** 9, np.int64), True))
            cases.append(mutate("plus_one", lambda a: np.asarray(a) + 1, True))
        if field in ("inFeatures", "outFeatures", "inChannels", "outChannels", "kernelSize"):
            cases.append(mutate("plus_one", lambda a: np.asarray(a) + 1, True))
    else:
        if field == "type":
            cases.append(mutate("unknown", lambda a: np.array([b"magic"], "S10"), True))
        elif field == "neuron/type":
            cases.append(mutate("unknown", lambda a: "LIF", True, h5py.string_dtype()))
        elif field == "neuron/activation":
            cases.append(mutate("unknown", lambda a: "sigmoid", True, h5py.string_dtype()))
        cases.append(mutate("number", lambda a: np.int64(7), True))
    # a group where a dataset belongs
    def to_group(f):
        del f[full]
        f.create_group(full)
    cases.append(Case(f"{tag}:group", _edit(base, f"{tag}_group", to_group), True, index, field))
    return cases


def _record_variants(base: pathlib.Path, n_layers: int, types: list[str]) -> list[Case]:
    """Corruptions of whole records: swapped, dropped, renamed, unknown fields."""
    tag = f"{base.parent.name}_{base.stem}"
    cases = []
    for i in range(n_layers - 1):
        def swap(f, i=i):
            f.move(f"layer/{i}", "layer/tmp")
            f.move(f"layer/{i + 1}", f"layer/{i}")
            f.move("layer/tmp", f"layer/{i + 1}")
        cases.append(Case(f"{tag}:swap_{i}_{i + 1}", _edit(base, f"{tag}_swap{i}", swap), False))
    cases.append(Case(f"{tag}:drop_first", _edit(base, f"{tag}_drop0", lambda f: f.__delitem__("layer/0")),
                      True, None, None))
    cases.append(Case(f"{tag}:drop_last", _edit(base, f"{tag}_dropl",
                                                lambda f: f.__delitem__(f"layer/{n_layers - 1}")), False))
    cases.append(Case(f"{tag}:rename", _edit(base, f"{tag}_ren", lambda f: f.move("layer/0", "layer/zero")),
                      True, None, None))
    cases.append(Case(f"{tag}:no_layer_group",
                      _edit(base, f"{tag}_nolayer", lambda f: f.__delitem__("layer")), True, file_level=True))
    i = n_layers - 1

    def unknown_field(f):
        f[f"layer/{i}"].create_dataset("frobnicate", data=np.int64(1))

    cases.append(Case(f"{tag}:unknown_field", _edit(base, f"{tag}_unk", unknown_field), True, i,
                      "frobnicate"))
    neuron_layers = [k for k in range(n_layers) if types[k][1]]
    if neuron_layers:
        k = neuron_layers[-1]

        def unknown_neuron_field(f):
            f[f"layer/{k}/neuron"].create_dataset("frobnicate", data=np.int64(1))

        def neuron_dataset(f):
            del f[f"layer/{k}/neuron"]
            f[f"layer/{k}"].create_dataset("neuron", data=np.int64(1))

        cases.append(Case(f"{tag}:unknown_neuron_field", _edit(base, f"{tag}_unkn", unknown_neuron_field),
                          True, k, "neuron/frobnicate"))
        cases.append(Case(f"{tag}:neuron_dataset", _edit(base, f"{tag}_nds", neuron_dataset), True, k,
                          "neuron"))
    return cases


def _file_variants(base: pathlib.Path, rng: np.random.Generator) -> list[Case]:
    """Damaged bytes: truncations, bit flips, random bytes."""
    tag = f"{base.parent.name}_{base.stem}"
    data = base.read_bytes()
    cases = []

    def write(name, payload):
        def make(tmp):
            path = tmp / f"{tag}_{name}.net"
            path.write_bytes(payload)
            return path
        return make

    for frac in (0.0, 0.01, 0.5, 0.9, 0.999):
        cases.append(Case(f"{tag}:truncated_{frac}", write(f"trunc{frac}", data[:int(len(data) * frac)]),
                          True, file_level=True))
    for flips in (1, 4, 32):
        for k in range(2):
            buf = bytearray(data)
            # flip bits in the first 4 kB (superblock, object headers, b-trees) and anywhere
            limit = min(len(buf), 4096) if k == 0 else len(buf)
            for pos in rng.integers(0, limit, flips):
                buf[int(pos)] ^= 1 << int(rng.integers(0, 8))
            cases.append(Case(f"{tag}:bitflip_{flips}_{k}", write(f"flip{flips}_{k}", bytes(buf)), False))
    cases.append(Case(f"{tag}:random_bytes", write("random", rng.bytes(len(data))), True, file_level=True))
    return cases


def _argument_variants() -> list[Case]:
    """Arguments that are not an hdf5 network file."""

    def empty(tmp):
        path = tmp / "empty.net"
        path.write_bytes(b"")
        return path

    def text(tmp):
        path = tmp / "text.net"
        path.write_text("layer 0: dense\n")
        return path

    def directory(tmp):
        path = tmp / "a_directory.net"
        path.mkdir()
        return path

    def empty_hdf5(tmp):
        path = tmp / "empty_hdf5.net"
        with h5py.File(path, "w"):
            pass
        return path

    def empty_layer(tmp):
        path = tmp / "empty_layer.net"
        with h5py.File(path, "w") as f:
            f.create_group("layer")
        return path

    def layer_dataset(tmp):
        path = tmp / "layer_dataset.net"
        with h5py.File(path, "w") as f:
            f.create_dataset("layer", data=np.arange(3))
        return path

    def huge_lazy_dataset(tmp):  # 8 GB declared, a few bytes on disk
        path = tmp / "huge_lazy.net"
        base = (LOCAL / "cuba_dense.net")
        shutil.copyfile(base, path)
        with h5py.File(path, "a") as f:
            del f["layer/0/weight"]
            f["layer/0"].create_dataset("weight", shape=(2 ** 16, 2 ** 15), dtype=np.float32,
                                        chunks=(256, 256), compression="gzip")
        return path

    return [
        Case("arg:none", lambda tmp: None, True, file_level=True),
        Case("arg:missing_file", lambda tmp: tmp / "does_not_exist.net", True, file_level=True),
        Case("arg:empty_file", empty, True, file_level=True),
        Case("arg:text_file", text, True, file_level=True),
        Case("arg:directory", directory, True, file_level=True),
        Case("arg:empty_hdf5", empty_hdf5, True, file_level=True),
        Case("arg:empty_layer_group", empty_layer, True, file_level=True),
        Case("arg:layer_is_dataset", layer_dataset, True, file_level=True),
        Case("arg:huge_lazy_dataset", huge_lazy_dataset, True, 0, "weight"),
    ]


def _issue_variants(bases: dict[str, pathlib.Path]) -> list[Case]:
    """The cases the issue names, on the files it names."""
    cases = []
    oxford = bases.get("network.net@oxford")
    if oxford is not None:
        def narrow(f):
            w = f["layer/0/weight"][()]
            _replace(f["layer/0"], "weight", w[:, :199])

        cases.append(Case("issue:oxford_weight_256x199_under_inFeatures_200", _edit(oxford, "narrow", narrow),
                          True, 0, ("inFeatures", "weight")))
        cases.append(Case("issue:oxford_scalar_weight", _edit(oxford, "scalar_w", lambda f: _replace(
            f["layer/0"], "weight", np.float32(2))), True, 0, "weight"))
        cases.append(Case("issue:oxford_shape_1e9", _edit(oxford, "shape1e9", lambda f: _replace(
            f["layer/0"], "shape", np.array([10 ** 9]))), True, 0, "shape"))
    mnist = bases.get("mnist.net@lava_dl_0.6")
    if mnist is not None:
        for key, value in (("weight", np.nan), ("bias", 2.0 ** 30), ("weight", 1000.0)):
            def edit(f, k=key, v=value):
                _replace(f["layer/0"], k, np.array([v], np.float32))

            cases.append(Case(f"issue:mnist_input_{key}_{value}", _edit(mnist, f"in_{key}_{value}", edit),
                              True, 0, key))
        def big_bias(f):
            f["layer/1"].create_dataset("bias", data=np.full(512, 2.0 ** 30, np.float32))

        cases.append(Case("issue:mnist_bias_2^30", _edit(mnist, "bias30", big_bias), True, 1, "bias"))
    pilot = bases.get("network.net@pilotnet_sdnn")
    if pilot is not None:
        cases.append(Case("issue:pilotnet_flatten_shape", _edit(pilot, "flat", lambda f: _replace(
            f["layer/5"], "shape", np.array([2561, 1, 1]))), True, 5, "shape"))
        cases.append(Case("issue:pilotnet_sigma_output_vThMant", _edit(pilot, "sigvth", lambda f: _replace(
            f["layer/9/neuron"], "vThMant", np.int64(-5))), True, 9, "neuron/vThMant"))
        cases.append(Case("issue:pilotnet_input_activation", _edit(pilot, "act", lambda f: _replace(
            f["layer/0/neuron"], "activation", "garbage", h5py.string_dtype())), True, 0,
                          "neuron/activation"))
        cases.append(Case("issue:pilotnet_conv_weight_300", _edit(pilot, "w300", lambda f: _replace(
            f["layer/2"], "weight", np.full((36, 24, 3, 3), 300, np.float32))), True, 2, "weight"))
    tiny = bases.get("tiny.net@lava_dl_0.6")
    if tiny is not None:
        def open_file(tmp):
            return h5py.File(_copy(tiny, tmp, "open"), "r")

        cases.append(Case("arg:open_h5py_file", open_file, True, file_level=True))
        cases.append(Case("valid:pathlib", lambda tmp: _copy(tiny, tmp, "valid"), False))
    return cases


def generate_cases() -> list[Case]:
    """All variants, in a fixed order (seeded)."""
    rng = np.random.default_rng(SEED)
    bases = _bases()
    cases: list[Case] = []
    for base in bases:
        with h5py.File(base, "r") as f:
            n = len(f["layer"])
            types = [(f[f"layer/{i}/type"][0].decode(), "neuron" in f[f"layer/{i}"]) for i in range(n)]
        pool = []
        for index, field, info in _fields(base):
            pool += _field_variants(base, index, field, info, types[index][0])
        picks = rng.choice(len(pool), size=min(PER_BASE, len(pool)), replace=False)
        cases += [pool[int(k)] for k in sorted(picks)]
        cases += _record_variants(base, n, types)
        cases += _file_variants(base, rng)
    cases += _argument_variants()
    named = {}
    for b in bases:
        folder = b.parent.parent.name if b.parent.name == "Trained" else b.parent.name
        named[f"{b.name}@{folder}"] = b
    cases += _issue_variants(named)
    return cases


def _load(config, kwargs):
    net = hdf5.Network(net_config=config, **kwargs)
    assert len(net.layers) >= 1
    return net


def run_case(case: Case, tmp: pathlib.Path) -> tuple[str, str, float, int]:
    """Load one variant; return ``(outcome, message, seconds, traced peak bytes)``."""
    config = case.make(tmp)
    shown = None if config is None else (config.filename if isinstance(config, h5py.File) else str(config))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        _load(config, case.kwargs)
        outcome, message = "loaded", ""
    except NetxFormatError as err:
        outcome, message = "named", str(err)
        problems = []
        if shown is not None and os.path.basename(shown) not in message:
            problems.append("does not name the file")
        if not case.file_level and err.layer is None and err.field is None and case.layer is not None:
            problems.append("names no layer/field")
        fields = case.field if isinstance(case.field, tuple) else (case.field,)
        if case.layer is not None and (err.layer != case.layer or err.field not in fields):
            problems.append(f"names layer {err.layer} field {err.field!r}, expected {case.layer} "
                            f"{case.field!r}")
        if not case.file_level and case.layer is None and (err.layer is None or err.field is None) \
                and not _file_level_message(err):
            problems.append("names no layer/field")
        if problems:
            outcome, message = "badly named", f"{'; '.join(problems)}: {message}"
    except Exception as err:  # noqa: BLE001  (the point: anything else is a failure)
        outcome, message = "other error", f"{type(err).__name__}: {err}"
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if isinstance(config, h5py.File):
            config.close()
    if outcome == "loaded" and case.must_fail:
        outcome = "loaded garbage"
    return outcome, message, seconds, peak


def _file_level_message(err: NetxFormatError) -> bool:
    """A whole-file error (not an hdf5 file, damaged, no layers): names the file only."""
    return err.path is not None and err.layer is None


@pytest.mark.skipif(not LOCAL.is_dir(), reason="tests/fixtures/lava_dl_0.6 missing")
def test_corrupted_files_load_or_raise_named_errors(tmp_path):
    cases = generate_cases()
    assert len(cases) >= (300 if SHARED.is_dir() else 150)
    start = time.perf_counter()
    failures, counts = [], {}
    for k, case in enumerate(cases):
        work = tmp_path / f"{k}"
        work.mkdir()
        outcome, message, seconds, peak = run_case(case, work)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome not in ("loaded", "named"):
            failures.append(f"{case.name}: {outcome}: {message[:300]}")
        elif seconds > MAX_SECONDS or peak > MAX_TRACED_BYTES:
            failures.append(f"{case.name}: took {seconds:.1f} s, traced {peak >> 20} MB")
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - start
    print(f"{len(cases)} variants in {elapsed:.1f} s: {counts}")
    assert not failures, f"{len(failures)} of {len(cases)} variants:\n" + "\n".join(failures)
    assert counts.get("loaded", 0) > 0 and counts.get("named", 0) > len(cases) // 2


def test_error_types_and_arguments(tmp_path):
    """One error type: ``NetxFormatError`` (= ``Hdf5FormatError``, a ValueError) with the file, layer and
    field as attributes; wrong ``net_config`` kinds and missing files are also the usual built-in types."""
    import pickle

    from lava_dl import netx
    from lava_dl.netx import utils

    assert netx.Hdf5FormatError is NetxFormatError is utils.NetxFormatError is utils.Hdf5FormatError
    assert issubclass(NetxFormatError, ValueError)
    assert issubclass(netx.NetxUnsupportedError, NotImplementedError)
    err = NetxFormatError("bad", path="x.net", layer=2, field="neuron/vDecay")
    assert str(err) == "x.net: layer 2, field 'neuron/vDecay': bad"
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), str(again), again.layer) == (NetxFormatError, str(err), 2)

    with pytest.raises(netx.NetxTypeError, match="net_config is None") as info:
        hdf5.Network(net_config=None)
    assert isinstance(info.value, TypeError)
    with pytest.raises(TypeError, match="net_config is None"):
        hdf5.build_layers(None)
    path = tmp_path / "cuba_dense.net"
    shutil.copyfile(LOCAL / "cuba_dense.net", path)
    with h5py.File(path, "r") as f:
        with pytest.raises(netx.NetxTypeError, match=r"cuba_dense\.net.*pass the file's path"):
            hdf5.Network(net_config=f)
        with pytest.raises(netx.NetxTypeError, match=r"cuba_dense\.net.*pass the file's path"):
            hdf5.build_layers(f)
    with pytest.raises(FileNotFoundError, match="nope.net: no such file") as info:
        hdf5.Network(net_config=tmp_path / "nope.net")
    assert isinstance(info.value, NetxFormatError)
    with pytest.raises(NetxFormatError, match="is a directory"):
        hdf5.Network(net_config=tmp_path)
    assert len(hdf5.Network(net_config=path).layers) == 2  # a pathlib path is fine


def test_size_limits_are_checked_before_allocating(tmp_path, monkeypatch):
    """Declared sizes beyond the limits raise at once, naming the field; the limits are adjustable."""
    path = tmp_path / "n.net"
    shutil.copyfile(LOCAL / "cuba_dense.net", path)
    with h5py.File(path, "r") as f:
        neurons = int(np.prod(f["layer/0/shape"][()]))
    monkeypatch.setattr(hdf5, "MAX_LAYER_NEURONS", neurons - 1)
    with pytest.raises(NetxFormatError, match=r"layer 0, field 'shape'.*MAX_LAYER_NEURONS") as info:
        hdf5.Network(net_config=path)
    assert info.value.path == str(path)
    monkeypatch.setattr(hdf5, "MAX_LAYER_NEURONS", 1 << 22)
    monkeypatch.setattr(hdf5, "MAX_DATASET_ELEMENTS", 4)
    with pytest.raises(NetxFormatError, match=r"layer 0, field '(bias|weight)'.*MAX_DATASET_ELEMENTS"):
        hdf5.Network(net_config=path)
