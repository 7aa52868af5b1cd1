"""HTTP pieces shared by the three services."""
