"""Distances on the Earth's surface."""

from __future__ import annotations

from math import asin, cos, radians, sin, sqrt

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points given in degrees."""
    p1, p2 = radians(lat1), radians(lat2)
    dp, dl = p2 - p1, radians(lon2 - lon1)
    a = sin(dp / 2) ** 2 + cos(p1) * cos(p2) * sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * asin(min(1.0, sqrt(a)))


def outside_geofence(*, distance_m: float, radius_m: float, accuracy_m: float) -> bool:
    """True only when the whole uncertainty circle lies outside home: a fix 150 m away with
    ±80 m accuracy may still be at home (100 m radius), so it is not counted against the person.
    Accuracy is capped at 1 km so a useless fix cannot excuse any distance."""
    return distance_m - min(max(accuracy_m, 0.0), 1000.0) > radius_m
