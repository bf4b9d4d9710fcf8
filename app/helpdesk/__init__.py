"""The helpdesk's tools: sharing links and their events, data-plane probes, keep-alive."""
