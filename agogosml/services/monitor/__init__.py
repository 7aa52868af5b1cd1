"""The monitor: the fourth service. It stores the output topic's scored events and the
feedback topic's labels, watches drift and live performance, acts on trigger rules and
serves the dashboard."""
