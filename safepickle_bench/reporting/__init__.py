"""Tables and matplotlib figures for runs and for results/."""
