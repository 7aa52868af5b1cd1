"""Sources and sinks: every streaming technology behind one small interface."""

from agogosml.streaming.base import OutRecord, Position, Sink, Source, SourceRecord

__all__ = ["OutRecord", "Position", "Sink", "Source", "SourceRecord"]
