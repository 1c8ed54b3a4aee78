"""Talking to PROMINENCE: the REST client (``client``), the token and where it comes from
(``auth``), and how a fresh one is got (``renewal``).

Owns every HTTP request to the PROMINENCE API and every token, and nothing about Snakemake.
May import: ``settings`` only (nothing else of the package).
"""
