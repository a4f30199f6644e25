"""Logging filters named in settings.LOGGING."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied


class PermissionDeniedOneLine(logging.Filter):
    """Log a 403 as one warning line with its reason, without the traceback.

    Django logs every PermissionDenied on `django.request` (and `django.security`) with the
    exception attached, so each refused page printed a full traceback although nothing went
    wrong: a role check said no. The reason (`This page needs the researcher role.`) is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, PermissionDenied):
            record.exc_info = None
            record.exc_text = None
            reason = " ".join(str(exc).split())
            if reason and isinstance(record.args, tuple):
                record.msg = f"{record.msg} (%s)"
                record.args = (*record.args, reason)
        return True
