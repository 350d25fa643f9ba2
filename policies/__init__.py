"""Declarative SLO, analysis, tuning, risk and admission policies and their renderers."""
