"""Business dates: the e-mall's partner cities are in China Standard Time (UTC+8).

Timestamps are stored as ``timestamptz``; a *date* (an admission's validity, a partnership's
effective dates) is a calendar date in Asia/Shanghai. SQL uses ``BUSINESS_DATE_SQL`` for "today".
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")
BUSINESS_DATE_SQL = "(now() at time zone 'Asia/Shanghai')::date"


def today() -> date:
    return datetime.now(BUSINESS_TZ).date()


def business_date(moment: datetime) -> date:
    return moment.astimezone(BUSINESS_TZ).date()
