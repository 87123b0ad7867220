"""``crownstream.engine.install``: the one place the engine is wired into a faust App, once per app."""

from __future__ import annotations

import faust
import pytest
from faust.tables import TableManager

from crownstream.engine import EngineError, EngineState, install, state_of
from crownstream.engine.errors import AlreadyInstalled, NotInstalled
from crownstream.engine.table_manager import RestoringTableManager
from crownstream.engine.topic_declarations import DeclareOnceTransport
from crownstream.engine.transactions import InputPartitionTransactionManager
from crownstream.settings import Settings


def _app(**settings):
    settings = Settings(**settings)
    return faust.App(f"install-test-{id(settings)}", broker="kafka://127.0.0.1:1", autodiscover=False), settings


def test_install_wires_the_transports_the_table_manager_and_the_state():
    app, settings = _app(table_restore="consumer", fault_abort_after_sends=3)
    state = install(app, settings)
    assert state_of(app) is state and isinstance(state, EngineState)
    assert state.settings is settings
    assert state.state_repair.fault_sends_left == 3
    assert isinstance(app.transport, DeclareOnceTransport)
    assert isinstance(app.producer_transport, DeclareOnceTransport)
    assert app.transport is not app.producer_transport
    assert app.conf.TableManager is RestoringTableManager
    assert app.transport.TransactionManager is InputPartitionTransactionManager


def test_faust_restore_keeps_faust_table_manager():
    app, settings = _app(table_restore="faust")
    install(app, settings)
    assert app.conf.TableManager is TableManager


def test_the_engine_is_installed_once_per_app_and_its_state_is_not_there_before():
    app, settings = _app()
    with pytest.raises(NotInstalled):
        state_of(app)
    install(app, settings)
    with pytest.raises(AlreadyInstalled):
        install(app, settings)
    assert issubclass(NotInstalled, EngineError) and issubclass(AlreadyInstalled, EngineError)
