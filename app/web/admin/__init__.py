"""The admin area: the console, Approve and Grant for organization, tenant readiness."""
