"""Deployments: served models behind a traffic split (issue 16, in progress: the sticky split so far)."""
