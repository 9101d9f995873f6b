"""Deployments: served models behind a sticky traffic split, with a request log, monitoring and promotion.

Pieces: `split` (which variant answers a user), `state` (creating and changing deployments: every change
an append-only event), `config` (the `deploy:` section of tunewise.yaml: alert rules, webhook, log settings).
"""
