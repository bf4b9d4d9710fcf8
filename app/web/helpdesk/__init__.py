"""The helpdesk area: sharing links and the user lookup."""
