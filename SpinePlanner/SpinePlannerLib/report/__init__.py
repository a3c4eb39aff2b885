"""Plan report: summary block, figures, self-contained HTML and PDF (consumers of a plan folder)."""
