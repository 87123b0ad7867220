"""One error hierarchy: every exception class Crownstream defines derives from ``CrownstreamError`` and is
defined in its package's ``errors`` module (other modules may import it from there, which keeps their old import
paths working), under that package's own base (``SchemasError``, ``SinksError``…).

Checked on the installed package: every module of ``crownstream`` and of the sub-packages its top-level folders
install as ([tool.setuptools.package-dir]) is imported and its namespace read."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import tomllib
from pathlib import Path
from types import ModuleType

import crownstream
from crownstream.errors import CrownstreamError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ERRORS = {
    "crownstream.errors": "CrownstreamError",
    "crownstream.engine.errors": "EngineError",
    "crownstream.schemas.errors": "SchemasError",
    "crownstream.streams.errors": "StreamsError",
    "crownstream.standings.errors": "StandingsError",
    "crownstream.notifications.errors": "NotificationsError",
    "crownstream.sinks.errors": "SinksError",
    "crownstream.agents.errors": "AgentsError",
    "crownstream.web.errors": "WebError",
}


def every_module() -> list[ModuleType]:
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    roots = sorted(package_dir["package-dir"])
    assert "crownstream" in roots and "crownstream.agents" in roots
    found: dict[str, ModuleType] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        module = found[name] = importlib.import_module(name)
        if hasattr(module, "__path__"):
            todo += [info.name for info in pkgutil.iter_modules(module.__path__, name + ".")]
    return [found[name] for name in sorted(found)]


def project_exceptions() -> dict[type[BaseException], set[str]]:
    """Every exception class defined in the project -> the modules whose namespace holds it (where it is
    defined, those that re-export it, and those that import it to raise or catch it)."""
    seen: dict[type[BaseException], set[str]] = {}
    for module in every_module():
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.split(".")[0] == crownstream.__name__
            ):
                seen.setdefault(value, set()).add(module.__name__)
    return seen


def test_the_walk_sees_every_package():
    names = {module.__name__ for module in every_module()}
    assert set(PACKAGE_ERRORS) <= names
    assert {"crownstream.settings", "crownstream.agents.decoding", "crownstream.sinks.targets"} <= names
    assert len(names) > 100


def test_every_exception_derives_from_the_root_and_lives_in_its_packages_errors_module():
    found = project_exceptions()
    assert len(found) >= 20  # the walk found them (the classes listed in the report of issue #13 and more)
    for cls in found:
        assert issubclass(cls, CrownstreamError), f"{cls.__module__}.{cls.__qualname__} does not derive from it"
        assert cls.__module__ in PACKAGE_ERRORS, (
            f"{cls.__qualname__} is defined in {cls.__module__}: define it in its package's errors module"
        )


def test_each_package_has_one_base_and_its_errors_derive_from_it():
    found = project_exceptions()
    for module, base_name in PACKAGE_ERRORS.items():
        base = getattr(importlib.import_module(module), base_name)
        assert base.__module__ == module
        assert base is CrownstreamError or base.__bases__ == (CrownstreamError,)
        mine = [cls for cls in found if cls.__module__ == module and cls is not base]
        assert mine or module == "crownstream.errors", module
        for cls in mine:
            if module == "crownstream.errors":
                continue  # the top-level modules' errors sit directly under the root
            assert issubclass(cls, base), f"{cls.__qualname__} is not a {base_name}"


def test_errors_keep_the_builtin_bases_their_callers_catch():
    from crownstream.agents.errors import RejectRecord, UnknownOp
    from crownstream.engine.errors import NoTransactionalProducer
    from crownstream.notifications.errors import InvalidPreferences
    from crownstream.schemas.errors import InvalidDelivery, InvalidEvent
    from crownstream.sinks.errors import DoesNotResolve, TargetRefused
    from crownstream.streams.errors import BrokerUnavailable
    from crownstream.web.errors import HttpError, NotReady

    for cls in (InvalidEvent, InvalidDelivery, InvalidPreferences, TargetRefused, DoesNotResolve, UnknownOp):
        assert issubclass(cls, ValueError), cls
    assert issubclass(DoesNotResolve, TargetRefused)
    assert issubclass(BrokerUnavailable, ConnectionError)
    from faust.exceptions import ProducerSendError

    assert issubclass(NoTransactionalProducer, ProducerSendError)
    error = BrokerUnavailable("127.0.0.1:1", OSError("refused"))
    assert isinstance(error, CrownstreamError) and "CROWNSTREAM_KAFKA_BOOTSTRAP" in str(error)
    assert not issubclass(RejectRecord, ValueError) and not issubclass(HttpError, ValueError)
    assert NotReady("rebalancing", retry_after=3).retry_after == 3


def test_the_old_import_paths_still_work():
    from crownstream import errors, settings
    from crownstream.agents import decoding, notifications_users
    from crownstream.agents import errors as agents_errors
    from crownstream.notifications import errors as notifications_errors
    from crownstream.notifications import preferences
    from crownstream.schemas import codec, deliveries
    from crownstream.schemas import errors as schemas_errors
    from crownstream.sinks import errors as sinks_errors
    from crownstream.sinks import targets
    from crownstream.standings import errors as standings_errors
    from crownstream.standings import live
    from crownstream.web import errors as web_errors
    from crownstream.web import routing

    assert settings.InsecureSecrets is errors.InsecureSecrets
    assert codec.InvalidEvent is schemas_errors.InvalidEvent
    assert deliveries.InvalidDelivery is schemas_errors.InvalidDelivery
    assert live.StreamClosed is standings_errors.StreamClosed
    assert preferences.InvalidPreferences is notifications_errors.InvalidPreferences
    assert targets.TargetRefused is sinks_errors.TargetRefused
    assert targets.DoesNotResolve is sinks_errors.DoesNotResolve
    assert decoding.RejectRecord is agents_errors.RejectRecord
    assert notifications_users.UnknownOp is agents_errors.UnknownOp
    assert routing.NotReady is web_errors.NotReady
