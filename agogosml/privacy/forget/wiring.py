"""From GdprSettings to a Forgetter: the journal, lineage index and subject keys in the
privacy store, the monitor's event store, the snapshots and the model loop on MLflow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from agogosml.modelloop.dataset import DatasetSpec
from agogosml.modelloop.retrain import LoopConfig
from agogosml.modelloop.tracking import Tracking
from agogosml.modelloop.training import TrainConfig
from agogosml.monitor.store.base import EventStore
from agogosml.privacy.forget.journal import open_journal
from agogosml.privacy.forget.models import MlflowModels
from agogosml.privacy.forget.process import Forgetter
from agogosml.privacy.keys import Keyring
from agogosml.privacy.lineage.index import open_lineage_index
from agogosml.privacy.settings import GdprSettings
from agogosml.privacy.subjectkeys import open_subject_keys


def loop_config(settings: GdprSettings) -> LoopConfig | None:
    """The model loop retraining on the first snapshot; None without a snapshot."""
    if not settings.snapshots:
        return None
    tracking = Tracking(settings.tracking_uri, settings.artifacts,
                        model_name=settings.model_name,
                        lineage_url=settings.store_url.get_secret_value())
    return LoopConfig(tracking, TrainConfig(
        settings.snapshots[0], DatasetSpec(subject=settings.subject_column),
        shards=settings.shards))


@contextmanager
def build_forgetter(settings: GdprSettings,
                    events: EventStore | None = None) -> Iterator[Forgetter]:
    """`events`: the event store to purge, if the caller has it open (the monitor); else
    the one `event_store_url` names, if any."""
    store_url = settings.store_url.get_secret_value()
    with ExitStack() as stack:
        journal = stack.enter_context(open_journal(store_url))
        lineage = stack.enter_context(open_lineage_index(store_url))
        keys = None
        if settings.kek_path is not None:
            keys = open_subject_keys(store_url, Keyring.from_file(settings.kek_path))
            stack.callback(keys.close)
        if events is None and settings.event_store_url is not None:
            from agogosml.monitor.store.base import Retention
            from agogosml.services.monitor.stores import open_store

            events = open_store(settings.event_store_url.get_secret_value(), Retention())
            stack.callback(events.close)
        loop = loop_config(settings)
        yield Forgetter(journal, lineage, settings.snapshots, settings.subject_column,
                        events, keys, None if loop is None else MlflowModels(loop))
