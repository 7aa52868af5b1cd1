"""The monitor's dashboard (issue 10, item 6): one page with its own scripts and styles,
served with a JSON API over a `MonitorView` (`dashboard_router`). It works offline: the
page loads nothing but its own files, and draws every plot itself as SVG."""

from agogosml.monitor.dashboard.router import dashboard_router

__all__ = ["dashboard_router"]
