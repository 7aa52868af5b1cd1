"""The app's HTTP routes, one module per API: thin over the data plane."""
