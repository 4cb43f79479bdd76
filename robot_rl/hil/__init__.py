"""Human-in-the-loop learning: interventions, the simulated human."""
