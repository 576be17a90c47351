"""Province-level administrative division codes (GB/T 2260, first two digits).

Why only province level: the county table changes every year (districts are
merged, renamed, re-coded), and an ID number keeps the code that was valid
when it was *issued*.  Checking the full six digits against today's table
rejects real people; checking them against the historical tables needs data
we do not ship.  The first two digits, however, have been stable since 1997
(Chongqing 50) and 1988 (Hainan 46), so they are a cheap, reliable plausibility
check and give us a province name to show.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

#: Provinces, autonomous regions and municipalities of the mainland.
MAINLAND_PROVINCES: Final = MappingProxyType(
    {
        "11": "北京市",
        "12": "天津市",
        "13": "河北省",
        "14": "山西省",
        "15": "内蒙古自治区",
        "21": "辽宁省",
        "22": "吉林省",
        "23": "黑龙江省",
        "31": "上海市",
        "32": "江苏省",
        "33": "浙江省",
        "34": "安徽省",
        "35": "福建省",
        "36": "江西省",
        "37": "山东省",
        "41": "河南省",
        "42": "湖北省",
        "43": "湖南省",
        "44": "广东省",
        "45": "广西壮族自治区",
        "46": "海南省",
        "50": "重庆市",
        "51": "四川省",
        "52": "贵州省",
        "53": "云南省",
        "54": "西藏自治区",
        "61": "陕西省",
        "62": "甘肃省",
        "63": "青海省",
        "64": "宁夏回族自治区",
        "65": "新疆维吾尔自治区",
    }
)

#: Province-level codes valid as the prefix of a resident ID number:
#: the mainland plus 71 (台湾省), which GB/T 2260 lists.
RESIDENT_PROVINCES: Final = MappingProxyType({**MAINLAND_PROVINCES, "71": "台湾省"})

#: Residence permits for Hong Kong, Macao and Taiwan residents (2018) use a
#: fixed six-digit address code instead of a real region.
HMT_PERMIT_PREFIXES: Final = MappingProxyType(
    {
        "810000": "香港特别行政区",
        "820000": "澳门特别行政区",
        "830000": "台湾地区",
    }
)

#: Registration authorities at national level put 100000 in the region part of
#: a unified social credit code (e.g. ministries registered by 中央编办).
CENTRAL_REGION_PREFIX: Final = "10"
CENTRAL_REGION_NAME: Final = "中央（国家级）"


def resident_province(code2: str) -> str | None:
    """Name of the province a resident ID's first two digits denote, or ``None``."""
    return RESIDENT_PROVINCES.get(code2)


def registration_province(code2: str) -> str | None:
    """Name of the province of a credit code's registration region, or ``None``.

    Registration authorities are mainland bodies, so this accepts the mainland
    provinces and the national level (``10``).
    """
    if code2 == CENTRAL_REGION_PREFIX:
        return CENTRAL_REGION_NAME
    return MAINLAND_PROVINCES.get(code2)
