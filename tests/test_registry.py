"""One registry type for every pluggable family: unknown names, duplicates, decorator registration."""

from __future__ import annotations

import pytest

from twin.errors import TwinInputError
from twin.registry import Registry, UnknownNameError


def _families():
    from twin.baselines import BASELINES
    from twin.datasets.bench import BENCHES
    from twin.datasets.registry import VIEWS
    from twin.ingest.cities import CITIES
    from twin.ingest.layouts import LAYOUTS
    from twin.render.receivers import PLACERS

    return {"city": CITIES, "layout": LAYOUTS, "placer": PLACERS, "view": VIEWS, "bench": BENCHES,
            "baseline": BASELINES}


def test_every_family_is_a_registry():
    fams = _families()
    for name, reg in fams.items():
        assert isinstance(reg, Registry), name
    assert {"paris", "munich", "florence", "san_francisco"} <= set(fams["city"].names())
    assert set(fams["layout"].names()) == {"cellmapper", "opencellid"}
    assert set(fams["placer"].names()) == {"random", "grid", "route"}
    assert {"folded_lte", "spike_train", "cir_taps", "tb_fingerprint", "bistatic_echo"} <= set(fams["view"].names())
    assert set(fams["view"].names()) <= set(fams["bench"].names()) | set(fams["view"].names())


@pytest.mark.parametrize("family", ["city", "layout", "placer", "view", "bench"])
def test_unknown_name_is_one_error_listing_the_names(family):
    reg = _families()[family]
    with pytest.raises(UnknownNameError) as ei:
        reg.get("no-such-member")
    e = ei.value
    assert isinstance(e, TwinInputError) and isinstance(e, KeyError)
    for n in reg.names():
        assert n in str(e)


def test_decorator_registration_and_duplicates():
    reg: Registry = Registry("thing", normalize=str.lower)

    @reg.register("Alpha")
    def alpha():
        return 1

    assert reg.get("ALPHA") is alpha and "alpha" in reg and len(reg) == 1
    assert reg["alpha"] is alpha and reg.values() == [alpha]
    reg.add("alpha", alpha)  # the same object again is not a duplicate
    with pytest.raises(ValueError, match="twice"):
        reg.add("ALPHA", lambda: 2)


def test_city_spellings_share_one_normaliser():
    from twin.ingest.cities import get_city

    assert get_city("San Francisco").name == get_city("sf").name == "san_francisco"
    assert get_city("etoile").name == "paris"
