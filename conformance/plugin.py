"""The detconf pytest plugin (registered as the ``pytest11`` entry point ``detconf``).

It acts only in a session that runs the conformance suite: one whose command line names the suite's
directory (or a file or test in it, or a directory of a source checkout that contains it), the package
with ``--pyargs conformance``, or an ``--impl``. Every other pytest session of the environment gets none
of its options, hypothesis profiles or TF32 setting (:func:`runs_conformance`).

Options: ``--impl`` (default ``oracle``), ``--device`` (cpu|cuda), ``--dtype``
(float32|float16|bfloat16|float64, default float32), ``--conformance-report=PATH`` (``.json``, ``.md``
or ``.html``; repeatable), ``--allow-tf32``, ``--conformance-replay=PATH``, ``--conformance-timeout``;
hypothesis profiles with ``--hypothesis-profile`` (``dev``, ``ci``, ``thorough``; default ``ci`` under CI,
else ``dev``), run without hypothesis' per-example deadline: the per-call timeout takes its place.

Every usage error (an implementation that cannot be imported or built, an unknown profile, a bad replay
file, a report path another run is writing) ends the session before any test with one line and exit 4.
Under pytest-xdist (``-n 2``) the workers run the tests and the controller prints the one summary and
writes the reports from the records the workers relay.
"""

from __future__ import annotations

import os
import platform
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from .adapters import AdapterError, resolve
from .adapters.base import Adapter
from .hypothesis_profiles import PROFILE_NAMES, default_profile_name, register_profiles
from .report import build_report, component_summary, draw_coverage, write_reports
from .runner import DEFAULT_TIMEOUT
from .tolerances import DTYPE_NAMES

CONFORMANCE_DIR = Path(__file__).resolve().parent
DTYPES = {name: dtype for dtype, name in DTYPE_NAMES.items()}
STATE = pytest.StashKey["State"]()
ACTIVE = pytest.StashKey[bool]()
#: Registered (as a plugin name) in a session where the suite's options exist.
SUITE_OPTIONS = "detconf-suite-options"
#: How many distinct reasons for declined draws a generated test's record keeps.
MAX_DECLINED_REASONS = 5


@dataclass
class State:
    impl: str
    device: str
    dtype: torch.dtype
    allow_tf32: bool
    reports: list[str]
    replay: list[str]
    timeout: float | None = DEFAULT_TIMEOUT
    world_size: int = 1
    autocast: torch.dtype | None = None
    replay_options: tuple[str, ...] = ()
    adapter: Adapter | None = None
    records: list[dict] = field(default_factory=list)
    unmatched_known: list[str] = field(default_factory=list)


def runs_conformance(targets: list[str], args: list[str], *, pyargs: bool = False) -> bool:
    """Whether a pytest session runs the conformance suite (module docstring): ``targets`` are its positional
    arguments (or, without any, its ``testpaths``), ``args`` the whole command line."""
    if any(arg == "--impl" or arg.startswith("--impl=") for arg in map(str, args)):
        return True
    checkout = "site-packages" not in CONFORMANCE_DIR.parts
    for target in (str(t).split("::")[0] for t in targets):
        if pyargs and (target == "conformance" or target.startswith("conformance.")):
            return True
        try:
            path = Path(target).resolve()
        except (OSError, ValueError):
            continue
        if path == CONFORMANCE_DIR or CONFORMANCE_DIR in path.parents or (checkout and path in CONFORMANCE_DIR.parents):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    # Options are added here, not in pytest_addoption, so that a session that does not run the suite keeps
    # its own --device or --dtype (a project's conftest may define them).
    known = early_config.known_args_namespace
    targets = list(known.file_or_dir) or list(early_config.getini("testpaths"))
    if runs_conformance(targets, args, pyargs=known.pyargs):
        early_config.stash[ACTIVE] = True
        _add_options(parser)
        register_profiles()
        # A name other conftests can ask for (pluginmanager.has_plugin) before adding an option of the same name.
        early_config.pluginmanager.register(object(), SUITE_OPTIONS)


def _active(config: pytest.Config) -> bool:
    return config.stash.get(ACTIVE, False)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # Here every conftest has registered its profiles, and hypothesis' own plugin has not yet loaded the
    # one named (it would end the session with an internal error on an unknown name).
    if not _active(config):
        return
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument
    name = config.getoption("hypothesis_profile", None) or default_profile_name()
    try:
        settings.get_profile(name)
    except InvalidArgument:
        where = ("--hypothesis-profile" if config.getoption("hypothesis_profile", None) else
                 "HYPOTHESIS_PROFILE" if os.environ.get("HYPOTHESIS_PROFILE") else "the default profile")
        raise pytest.UsageError(f"{where}: unknown hypothesis profile {name!r}; the suite's are "
                                f"{', '.join(PROFILE_NAMES)} (a conftest may register more)") from None


def _add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("detconf", "detconf conformance suite")
    group.addoption("--impl", default="oracle",
                    help="implementation under test: a built-in adapter (oracle), an entry point of group "
                         "detconf.adapters, or py:package.module:factory (default: oracle)")
    group.addoption("--device", default="cpu", choices=("cpu", "cuda"), help="device of the candidate (default cpu)")
    group.addoption("--dtype", default="float32", choices=tuple(DTYPES),
                    help="dtype of the candidate (default float32)")
    group.addoption("--conformance-report", action="append", default=[], metavar="PATH",
                    help="write a report to PATH (.json, .md or .html); repeatable")
    group.addoption("--allow-tf32", action="store_true", help="allow TF32 matmuls and convolutions (off by default)")
    group.addoption("--conformance-replay", action="append", default=[], metavar="PATH",
                    help="re-run a saved failing example (a file under .detconf/failures/)")
    group.addoption("--world-size", type=int, default=1, metavar="N",
                    help="run the rank-dependent components (the DETR-family criteria) on N ranks of a real "
                         "torch.distributed group (gloo; nccl with --device=cuda), each rank on its shard of the "
                         "batch (default 1: one process)")
    group.addoption("--autocast", default=None, choices=("float16", "bfloat16"),
                    help="run the candidate on float32 inputs inside torch.autocast(device, dtype), as mixed-precision "
                         "training does (with --dtype=float32)")
    group.addoption("--conformance-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                    help="fail a candidate call (forward and gradients) that runs longer, as class timeout; 0: no "
                         f"limit (default {DEFAULT_TIMEOUT:g})")
    onnx = parser.getgroup("detconf-onnx", "detconf --impl=onnx (docs/onnx.md)")
    onnx.addoption("--onnx-opset", type=int, default=None,
                   help="opset of the exports (default: the newest the installed torch exporter writes)")
    onnx.addoption("--onnx-source", default=None, metavar="NAME",
                   help="whose modules are exported: reference (default: the reference's formulas), ultralytics, "
                        "transformers or mmdet (the library's own modules, exported the way it exports them)")
    onnx.addoption("--onnx-model", default=None, metavar="PATH", help="check your own .onnx model instead of exports")
    onnx.addoption("--onnx-spec", default=None, metavar="FILE.toml",
                   help="your model's component, profile, config, input/output names, mask polarity and weights")
    onnx.addoption("--onnx-component", default=None, help="the component your model implements (e.g. position.sine)")
    onnx.addoption("--onnx-profile", default=None, help="the profile (conventions) your model follows, e.g. detr")
    onnx.addoption("--onnx-input", action="append", default=[], metavar="CANONICAL=NAME",
                   help="your model's name for a canonical input (repeatable)")
    onnx.addoption("--onnx-output", action="append", default=[], metavar="CANONICAL=NAME",
                   help="your model's name for a canonical output (repeatable)")
    onnx.addoption("--onnx-config", action="append", default=[], metavar="KEY=VALUE",
                   help="the config your model was exported with, e.g. num_feats=128 (JSON values; repeatable)")


@pytest.hookimpl(trylast=True)  # after hypothesis' own plugin has loaded --hypothesis-profile
def pytest_configure(config: pytest.Config) -> None:
    if not _active(config):
        return
    if not config.getoption("hypothesis_profile", None):
        from hypothesis import settings
        settings.load_profile(default_profile_name())
    # No per-example deadline: a slow but correct candidate (an export, a first call) must not fail; the
    # per-call --conformance-timeout bounds a hanging one instead.
    _without_deadline()
    timeout = config.getoption("conformance_timeout")
    if not timeout >= 0:  # also refuses NaN
        raise pytest.UsageError(f"--conformance-timeout={timeout:g}: expected a number of seconds >= 0 (0: no limit)")
    state = State(impl=config.getoption("impl"), device=config.getoption("device"),
                  dtype=DTYPES[config.getoption("dtype")], allow_tf32=config.getoption("allow_tf32"),
                  reports=config.getoption("conformance_report"), replay=config.getoption("conformance_replay"),
                  timeout=timeout or None, replay_options=_replay_options(config),
                  world_size=config.getoption("world_size"),
                  autocast=DTYPES[config.getoption("autocast")] if config.getoption("autocast") else None)
    if state.world_size < 1:
        raise pytest.UsageError(f"--world-size={state.world_size}: expected a number of ranks >= 1")
    onnx_options = [o for o in state.replay_options if o.startswith("--onnx-")]
    if onnx_options and state.impl != "onnx":
        raise pytest.UsageError(f"{onnx_options[0].partition('=')[0]} applies to --impl=onnx, not --impl={state.impl}")
    if state.autocast is not None and state.dtype != torch.float32:
        raise pytest.UsageError(f"--autocast={config.getoption('autocast')} runs the candidate on float32 inputs: "
                                f"--dtype={config.getoption('dtype')} casts the inputs instead; give one of them")
    if state.autocast is not None and state.world_size > 1:
        raise pytest.UsageError("--autocast and --world-size are run separately (each as its own session)")
    for path in state.reports:
        if not path.endswith((".json", ".md", ".html")):
            raise pytest.UsageError(f"--conformance-report={path}: expected a path ending in .json, .md or .html")
    if state.device == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--device=cuda: CUDA is not available here (torch.cuda.is_available() is False); "
                                "run on a GPU machine or use --device=cpu")
    # Before any test (and in pytest-xdist's controller, before any worker starts): an implementation that
    # cannot be imported, built or configured is a usage error, never an internal error or a skipped run.
    try:
        adapter = _adapter(state, config)
    except AdapterError as err:
        raise pytest.UsageError(str(err)) from None
    available = adapter.available()
    if not available:
        # A run that checks nothing must not pass: a CI job with a broken install would be green.
        raise pytest.UsageError(f"--impl={state.impl}: {adapter.name} is not installed or fails to import "
                                f"({available.reason}); install it with: {adapter.install}")
    if state.autocast is not None and not adapter.runs_under_autocast:
        raise pytest.UsageError(f"--autocast: {adapter.name} cannot run under torch.autocast "
                                f"({adapter.runs_under_autocast.reason})")
    _check_replay_files(state.replay)
    # TF32 changes float32 matmul results on Ampere and later; keep it off unless asked for.
    torch.backends.cuda.matmul.allow_tf32 = state.allow_tf32
    torch.backends.cudnn.allow_tf32 = state.allow_tf32
    config.stash[STATE] = state
    if not hasattr(config, "workerinput"):
        _claim_reports(state.reports)
        config.add_cleanup(lambda: _release_reports(state.reports))
    config.pluginmanager.register(Reporter(state, config), f"detconf-reporter-{id(config)}")
    config.addinivalue_line("markers", "conformance: a test of the detconf conformance suite")


def _replay_options(config: pytest.Config) -> tuple[str, ...]:
    """The options besides impl, dtype and device that change a candidate's call, as a replay command gives them."""
    options = ["--allow-tf32"] if config.getoption("allow_tf32") else []
    if config.getoption("autocast"):
        options.append(f"--autocast={config.getoption('autocast')}")
    if config.getoption("world_size") > 1:
        options.append(f"--world-size={config.getoption('world_size')}")
    for name in ("onnx_source", "onnx_opset", "onnx_model", "onnx_spec", "onnx_component", "onnx_profile"):
        value = config.getoption(name, None)
        if value is not None:
            options.append(f"--{name.replace('_', '-')}={value}")
    for name in ("onnx_input", "onnx_output", "onnx_config"):
        options += [f"--{name.replace('_', '-')}={value}" for value in config.getoption(name, None) or []]
    return tuple(options)


def _check_replay_files(paths: list[str]) -> None:
    """Each ``--conformance-replay`` file: readable, of a known component and profile."""
    from components.contract import COMPONENTS
    from oracle.conventions import PROFILES

    from .runner import load_failure
    for path in paths:
        try:
            component, _, config, profile = load_failure(Path(path))
        except Exception as err:  # noqa: BLE001 - whatever is wrong with the file, it is the option's error
            raise pytest.UsageError(f"--conformance-replay={path}: not a saved failing example "
                                    f"({type(err).__name__}: {' '.join(str(err).split())})") from None
        if component not in COMPONENTS:
            raise pytest.UsageError(f"--conformance-replay={path}: unknown component {component!r}; known: "
                                    f"{', '.join(sorted(COMPONENTS))}")
        if profile not in PROFILES:
            raise pytest.UsageError(f"--conformance-replay={path}: unknown profile {profile!r}")
        if not isinstance(config, dict):
            raise pytest.UsageError(f"--conformance-replay={path}: its config is {type(config).__name__}, "
                                    f"expected a mapping")


def _lock_path(report: str) -> Path:
    path = Path(report).resolve()
    return path.with_name(f".{path.name}.lock")


def _claim_reports(reports: list[str]) -> None:
    """A lock file beside each report path, holding this process's id: a second run writing the same report
    is a usage error naming the first (a lock whose process has ended is taken over)."""
    for report in reports:
        lock = _lock_path(report)
        lock.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    holder = int(lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    holder = 0
                if holder and holder != os.getpid() and _alive(holder):
                    _release_reports(reports[:reports.index(report)])
                    raise pytest.UsageError(f"--conformance-report={report}: another run (process {holder}) is "
                                            f"writing this report; give this run another path") from None
                lock.unlink(missing_ok=True)  # left by a run that ended without releasing it
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            break


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _release_reports(reports: list[str]) -> None:
    for report in reports:
        lock = _lock_path(report)
        try:
            if lock.read_text().strip() == str(os.getpid()):
                lock.unlink()
        except OSError:
            pass


def _is_conformance(item: pytest.Item) -> bool:
    return Path(str(item.fspath)).resolve().parent == CONFORMANCE_DIR


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not _active(config):
        return []
    state = config.stash[STATE]
    try:
        adapter = _adapter(state, config)
        impl = f"{adapter.name} {adapter.version} (profile: {adapter.profile})"
    except AdapterError as err:
        impl = f"{state.impl} (unresolved: {err})"
    from hypothesis import settings
    cuda = torch.version.cuda or "none"
    modes = (f", world size {state.world_size}" if state.world_size > 1 else "") + \
        (f", autocast {DTYPE_NAMES[state.autocast]}" if state.autocast else "")
    return [f"detconf conformance: impl {impl}",
            f"  device {state.device}, dtype {DTYPE_NAMES[state.dtype]}{modes}, TF32 "
            f"{'on' if state.allow_tf32 else 'off'}, torch {torch.__version__} (CUDA {cuda}, available: "
            f"{torch.cuda.is_available()}), python {platform.python_version()}, hypothesis profile "
            f"{settings.get_current_profile_name()!r}"]


# --------------------------------------------------------------------------- collection

def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if _active(metafunc.config) and "replay_path" in metafunc.fixturenames:
        paths = metafunc.config.stash[STATE].replay
        metafunc.parametrize("replay_path", paths, ids=[Path(p).name for p in paths])


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _active(config):
        if any(_is_conformance(i) for i in items):
            raise pytest.UsageError("the conformance suite was collected without being named on the command line: "
                                    "run pytest conformance (or --pyargs conformance, or give --impl)")
        return
    state = config.stash[STATE]
    ours = [i for i in items if _is_conformance(i)]
    if not ours:
        return
    replaying = bool(state.replay)
    keep, dropped = [], []
    for item in items:
        is_replay = _is_conformance(item) and item.originalname == "test_replay"
        (keep if (is_replay == replaying or not _is_conformance(item)) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    adapter = _adapter(state, config)
    for item in items:
        if _is_conformance(item):
            item.add_marker(pytest.mark.conformance)
    if adapter.known_differences:
        from .known import apply_known_differences
        run_dtype = f"autocast-{DTYPE_NAMES[state.autocast]}" if state.autocast else DTYPE_NAMES[state.dtype]
        state.unmatched_known = apply_known_differences(Path(adapter.known_differences), items, run_dtype,
                                                        str(state.device).split(":")[0], state.world_size)
        for entry in state.unmatched_known:
            warnings.warn(f"known difference {entry!r} of {adapter.name} matches no collected test", UserWarning,
                          stacklevel=1)


def _without_deadline() -> None:
    """The current hypothesis profile without its per-example deadline (as ``<name>-no-deadline``); the rest
    of the profile is kept."""
    from hypothesis import settings
    name = settings.get_current_profile_name()
    if settings.get_profile(name).deadline is not None:
        settings.register_profile(f"{name}-no-deadline", settings.get_profile(name), deadline=None)
        settings.load_profile(f"{name}-no-deadline")


def _adapter(state: State, config: pytest.Config) -> Adapter:
    """The run's adapter, resolved and configured once (an adapter with options reads them in ``configure``)."""
    if state.adapter is None:
        adapter = resolve(state.impl)
        if hasattr(adapter, "configure"):
            try:
                adapter.configure(config)
            except pytest.UsageError:
                raise
            except Exception as err:  # noqa: BLE001 - a user's adapter failing to configure is a usage error
                raise AdapterError(f"--impl={state.impl}: configuring {adapter.name} raised "
                                   f"{type(err).__name__}: {' '.join(str(err).split())}") from None
        state.adapter = adapter
    return state.adapter


@pytest.fixture(scope="session")
def detconf(request: pytest.FixtureRequest) -> Iterator["Session"]:
    """The run's adapter, device and dtype, and a way to check one call."""
    session = Session(request.config.stash[STATE])
    yield session
    session.close()


class Session:
    def __init__(self, state: State):
        self.state = state
        self.adapter = state.adapter if state.adapter is not None else resolve(state.impl)
        self.device, self.dtype, self.impl = state.device, state.dtype, state.impl
        self._pool = None

    def pool(self):
        """The ``--world-size`` process group, started on first use and again after a call broke it."""
        from .distributed import RankPool
        if self._pool is not None and getattr(self._pool, "broken", False):
            self._pool.close()
            self._pool = None
        if self._pool is None:
            self._pool = RankPool(self.impl, self.state.world_size, self.device)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _ranked(self, component: str) -> bool:
        from components.ranks import rank_dependent
        return self.state.world_size > 1 and rank_dependent(component)

    @staticmethod
    def recorder(request: pytest.FixtureRequest, generated: bool = False):
        """Record a check's figures on the test item; over many generated examples keep the worst.

        With ``generated``, also count the test's draws: ``draws`` (examples run), ``supported_draws`` (those
        checked) and ``declined_reasons`` (why the others were declined; a record with ``declined`` is a draw
        the adapter declined). The counts stop at the test's first failure: hypothesis' shrinking re-runs
        variants of the failing example, which are no new draws."""
        def record(info: dict) -> None:
            props = request.node.user_properties
            entry = next((v for k, v in props if k == "detconf"), None)
            if entry is None:
                entry = {k: v for k, v in info.items() if k != "declined"}
                entry.pop("class", None)  # merged below, after the draw is counted
                if generated:
                    entry.update(draws=0, supported_draws=0, declined_reasons=[])
                props.append(("detconf", entry))
            if generated and "draws" in entry and not entry.get("class") and info.get("outcome") != "not provided":
                entry["draws"] += 1
                if "declined" in info:
                    reasons = entry["declined_reasons"]
                    if info["declined"] not in reasons and len(reasons) < MAX_DECLINED_REASONS:
                        reasons.append(info["declined"])
                else:
                    entry["supported_draws"] += 1
            if "declined" in info:
                return
            for key in ("max_abs", "max_rel", "ulps", "norm_ulps"):
                if info.get(key, 0.0) > entry.get(key, 0.0):
                    entry[key] = info[key]
            for key in ("outcome", "reason", "class", "paths"):
                if key in info:
                    entry[key] = info[key]
            for key, value in info.items():
                entry.setdefault(key, value)
        return record

    def check_case(self, case, request: pytest.FixtureRequest) -> None:
        """Run a golden case through the adapter and compare. The fixture is verified first, at every dtype
        (its identity against the manifest, its stored outputs against the reference on its stored inputs), so
        that a forged or edited fixture fails as such, never as the implementation's fault."""
        from .runner import check
        inputs, outputs = case.load(verify=True)
        if self._ranked(case.component):
            from components.ranks import batch_size

            from .runner import check_ranked
            if batch_size(case.component, inputs) < self.state.world_size:
                reason = f"a batch of {batch_size(case.component, inputs)} image(s) for {self.state.world_size} ranks"
                self.recorder(request)({"component": case.component, "case": case.name, "profile": case.profile,
                                        "outcome": "not provided", "reason": reason})
                pytest.skip(f"not provided: {reason}")
            check_ranked(self.adapter, case.component, inputs, case.config, case.profile, pool=self.pool(),
                         device=self.device, dtype=self.dtype, label=case.name, record=self.recorder(request),
                         timeout=self.state.timeout)
            return
        check(self.adapter, case.component, inputs, case.config, case.profile, device=self.device, dtype=self.dtype,
              fixture=outputs, label=case.name, record=self.recorder(request), timeout=self.state.timeout,
              autocast=self.state.autocast)

    def check_replay(self, path: Path, request: pytest.FixtureRequest) -> None:
        """Re-run a saved failing example as the run's options say (dtype, device, autocast, world size)."""
        from .runner import check, check_ranked, load_failure
        component, inputs, config, profile = load_failure(path)
        label, record = f"replay {path}", self.recorder(request)
        if self._ranked(component):
            check_ranked(self.adapter, component, inputs, config, profile, pool=self.pool(), device=self.device,
                         dtype=self.dtype, label=label, record=record, timeout=self.state.timeout)
        else:
            check(self.adapter, component, inputs, config, profile, device=self.device, dtype=self.dtype, label=label,
                  record=record, timeout=self.state.timeout, autocast=self.state.autocast)

    def check_invalid(self, case, request: pytest.FixtureRequest) -> None:
        """Run an invalid input (conformance/invalid_inputs.py) through the adapter: it must raise."""
        from .runner import check_invalid
        check_invalid(self.adapter, case.component, case.inputs(), case.config, case.profile, why=case.why,
                      error=case.error, device=self.device, dtype=self.dtype, label=case.id,
                      record=self.recorder(request), timeout=self.state.timeout)

    def check_generated(self, component: str, inputs: dict, config: dict, profile: str,
                        request: pytest.FixtureRequest) -> None:
        """Run a generated example through the adapter and compare with the reference, live."""
        from .runner import check_generated
        if self._ranked(component):
            from hypothesis import reject

            from components.ranks import batch_size

            from .runner import check_ranked
            from .runner import ConformanceFailure, with_replay
            if batch_size(component, inputs) < self.state.world_size:
                reject()  # a data-parallel rank always has an image: this draw is not a world-size batch
            try:
                check_ranked(self.adapter, component, inputs, config, profile, pool=self.pool(), device=self.device,
                             dtype=self.dtype, label=request.node.name, record=self.recorder(request, generated=True),
                             timeout=self.state.timeout, per_draw=True)
            except ConformanceFailure as err:
                raise with_replay(err, request.node.name, component, inputs, config, profile, impl=self.impl,
                                  dtype=self.dtype, device=self.device,
                                  replay_options=self.state.replay_options) from None
            return
        check_generated(self.adapter, component, inputs, config, profile, device=self.device, dtype=self.dtype,
                        test_name=request.node.name, impl=self.impl, record=self.recorder(request, generated=True),
                        timeout=self.state.timeout, replay_options=self.state.replay_options,
                        autocast=self.state.autocast)


# --------------------------------------------------------------------------- reporting

class Reporter:
    """Collects one record per conformance test. Under pytest-xdist the controller's records come from the
    reports the workers relay (with their user_properties), and a worker whose process ended mid-test (a
    candidate that crashed it) is reported by xdist as that test's failure, recorded here as class *crashed*."""

    def __init__(self, state: State, config: pytest.Config):
        self.state = state
        self.config = config

    def _crash_record(self, report: pytest.TestReport) -> dict | None:
        """The record of a conformance test whose process ended before it reported (no figures of its own)."""
        if not report.failed or report.when in ("setup", "teardown"):
            return None
        if Path(self.config.rootpath, report.nodeid.split("::")[0]).resolve().parent != CONFORMANCE_DIR:
            return None
        from components.contract import COMPONENTS
        param = report.nodeid.partition("[")[2].rstrip("]").split("/")[0]
        return {"component": param if param in COMPONENTS else "unknown", "class": "crashed"}

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        infos = [v for k, v in report.user_properties if k == "detconf"]
        if not infos:
            crashed = self._crash_record(report)
            if crashed is None:
                return
            infos = [crashed]
        elif report.when != "call" and not (report.skipped and report.when == "setup"):
            return
        info = dict(infos[-1])
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        elif report.failed and str(report.longrepr).startswith("[XPASS(strict)]"):
            outcome = "xpassed"  # a strict xfail that passed: pytest fails it without setting wasxfail
        elif info.get("outcome") == "not provided":
            outcome = "not provided"
        else:
            outcome = report.outcome
        info.update(test=report.nodeid, outcome=outcome)
        if hasattr(report, "wasxfail"):
            info["reason"] = report.wasxfail  # the known difference's category, reason and link
        if report.failed:
            info.setdefault("class", "error")
            # What differed: the failure's own message (output path, worst index, got/expected, ULPs, tolerance,
            # class), not the traceback's last line.
            crash = getattr(report.longrepr, "reprcrash", None)
            text = crash.message if crash is not None else str(report.longrepr or "")
            for prefix in ("conformance.runner.ConformanceFailure: ", "conformance.known.FailedDifferently: "):
                text = text.removeprefix(prefix)
            info["message"] = text[:4000]
        self.state.records.append(info)

    @pytest.hookimpl(wrapper=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function):
        """A generated test whose every draw the adapter declined ends as *not provided* (skipped with the reasons
        seen), not as hypothesis' error that no example satisfied its assumptions. A test with a known difference
        (conformance/known.py) that fails raises KnownDifferenceObserved when it failed as its entry expects (its
        strict xfail's ``raises``) and FailedDifferently otherwise (a failure naming the entry)."""
        from hypothesis.errors import Unsatisfiable
        try:
            return (yield)
        except Unsatisfiable:
            entry = next((v for k, v in pyfuncitem.user_properties if k == "detconf"), None)
            if entry is None or not entry.get("draws") or entry.get("supported_draws"):
                raise
            reason = "; ".join(entry["declined_reasons"]) or "every draw declined"
            entry.update(outcome="not provided", reason=reason)
            pytest.skip(f"not provided: {reason} (the adapter declined all {entry['draws']} draws)")
        except Exception as err:
            from .known import KNOWN, observe
            known = pyfuncitem.stash.get(KNOWN, None)
            if known is None:
                raise
            raise observe(known, err) from err

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        """pytest-xdist: a worker's known differences that matched no collected test (every worker collects all)."""
        unmatched = getattr(node, "workeroutput", {}).get("detconf_unmatched_known")
        if unmatched is not None:
            self.state.unmatched_known = list(unmatched)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        if not self.state.records or hasattr(config, "workerinput"):
            return
        tr = terminalreporter
        tr.section("detconf conformance summary")
        adapter = self.state.adapter
        tr.write_line(f"impl {adapter.name} {adapter.version}, {str(self.state.dtype).removeprefix('torch.')} on "
                      f"{self.state.device}")
        for line in adapter.summary() if hasattr(adapter, "summary") else []:
            tr.write_line(line)
        for component, row in component_summary(self.state.records).items():
            classes = ", ".join(f"{n} {k}" for k, n in sorted(row["classes"].items()))
            tr.write_line(f"{component:32s} {row['passed']:4d} passed {row['failed']:3d} failed"
                          f"{' (' + classes + ')' if classes else ''} {row['not provided']:3d} not provided "
                          f"{row['xfailed']:3d} xfailed; worst rel {row['worst_rel']:.2g} "
                          f"({row['worst_ulps']:.3g} ULPs)")
        coverage = draw_coverage(self.state.records)
        if coverage["never_supported"]:
            tr.write_line("generated tests that never got a supported draw (every draw declined):")
            for t in coverage["never_supported"]:
                tr.write_line(f"  {t['test']}: 0 / {t['draws']} draws ({'; '.join(t['reasons'])})")
        if coverage["partially_supported"]:
            tr.write_line("generated tests with only some supported draws (supported / draws):")
            for t in coverage["partially_supported"]:
                tr.write_line(f"  {t['test']}: {t['supported_draws']} / {t['draws']} draws "
                              f"(declined: {'; '.join(t['reasons'])})")
        for path in self.state.reports:
            tr.write_line(f"report written to {Path(path).resolve()}")

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput"):
            session.config.workeroutput["detconf_unmatched_known"] = list(self.state.unmatched_known)
            return
        if not self.state.reports:
            return
        state = self.state
        report = build_report(state.adapter, impl=state.impl, device=state.device, dtype=state.dtype,
                              allow_tf32=state.allow_tf32, records=state.records,
                              unmatched_known_differences=state.unmatched_known, world_size=state.world_size,
                              autocast=state.autocast)
        write_reports(report, state.reports)
