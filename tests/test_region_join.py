"""Regions whatever the cluster names look like: when no cluster's name is a products' region
label code, the catalog joins by id through the clusters' own listings and says so; filtered
listings give one row per product and region whatever their ``regions`` hold. Each answer is
compared with the same question asked of a sandbox where the guesses hold.
"""

from __future__ import annotations

import pytest

from novita_notebook import Novita
from novita_notebook.errors import NovitaError
from novita_notebook.models import Cluster, Product
from novita_notebook.region_join import JOIN_ID, JOIN_NAME, JOIN_NONE, learn_join
from novita_notebook.sandbox import Sandbox

SWITCHED = [
    {"clusterNames": "city"},
    {"filteredRegions": "all"},
    {"clusterNames": "city", "filteredRegions": "all"},
]


def _client(sb: Sandbox) -> Novita:
    return Novita(api_key=sb.api_key, api_url=sb.url)


def _by_cluster_id(novita: Novita, frame) -> set[tuple[str, str, bool]]:
    """(product id, cluster id, available) of a products frame, independent of the names;
    every row's region is a cluster the API lists (its cluster_id is joined)."""
    ids = {c.name: c.id for c in novita.cached_clusters()}
    assert frame["cluster_id"].notna().all() and set(frame["region"]) <= set(ids)
    return {(r.product_id, r.cluster_id, bool(r.available)) for r in frame.itertuples()}


@pytest.fixture(scope="module")
def reference():
    """What the package answers where every guess holds (the default sandbox)."""
    with Sandbox(speed=300, seed=7) as sb:
        novita = _client(sb)
        try:
            yield {
                "available": _by_cluster_id(novita, novita.products(available=True)),
                "detail": _by_cluster_id(novita, novita.products(gpu="4090", detail=True)),
                "regions": novita.regions()[["id", "products", "products_available"]]
                .set_index("id")
                .to_dict("index"),
            }
        finally:
            novita.close()


@pytest.mark.parametrize(
    "switches", SWITCHED, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items())
)
def test_products_and_regions_are_right_whatever_the_names_and_filtered_regions(
    reference, switches
):
    with Sandbox(speed=300, seed=7, switches=switches) as sb:
        novita = _client(sb)
        try:
            available = novita.products(available=True)
            assert len(available) == len(available.drop_duplicates(["product_id", "region"]))
            assert _by_cluster_id(novita, available) == reference["available"]
            detail = novita.products(gpu="4090", detail=True)
            assert _by_cluster_id(novita, detail) == reference["detail"]
            regions = novita.regions()
            counts = regions[["id", "products", "products_available"]].set_index("id")
            assert counts.to_dict("index") == reference["regions"]  # nothing inflated
            assert regions["cheapest_gpu"].notna().all()
            joined_by = "by id" if "clusterNames" in switches else "by name"
            assert joined_by in available.attrs["region_join"]
        finally:
            novita.close()


def test_create_lands_and_says_which_join_when_names_are_not_labels():
    with Sandbox(speed=300, seed=7, switches={"clusterNames": "city"}) as sb:
        novita = _client(sb)
        try:
            inst = novita.create("joined", gpu="RTX 4090", image="ubuntu:22.04", region="Singapore")
            assert inst.cluster_id == "as-sgp-2" and inst.region == "Singapore"
            report = inst.fallback_report
            assert "regions joined by id" in "\n".join(report.header())
            assert report.chosen.signal == "region listing"  # its stock was known
            assert novita.catalog.region_join().method == JOIN_ID
            elsewhere = novita.create("anywhere", gpu="A100", image="ubuntu:22.04")
            assert elsewhere.status in ("pending", "toCreate", "creating", "pulling", "running")
            listed = novita.instances()
            assert listed["price_per_hour"].notna().all()  # prices found through the join
            assert set(novita.products(region="Singapore")["region"]) == {"Singapore"}
        finally:
            novita.close()


def test_the_name_join_costs_no_extra_call(sandbox, client):
    client.products()
    calls = [r["query"] for r in sandbox.requests() if r["path"].endswith("/products")]
    assert calls == [""]  # the unfiltered listing only: no region listing to learn a join
    assert client.catalog.region_join().method == JOIN_NAME


def _product(pid: str, *regions: str) -> Product:
    return Product(pid, pid, None, None, None, True, None, None, tuple(regions), 1.0, None)


def test_learned_join_by_label_by_products_by_ids_and_none():
    clusters = [Cluster("c-a", "Alpha"), Cluster("c-b", "Beta"), Cluster("c-c", "Gamma"),
                Cluster("c-d", "Delta")]  # fmt: skip
    listing = [_product("p1", "A-1", "B-1"), _product("p2", "A-1"), _product("p3", "B-1")]
    join = learn_join(
        clusters,
        listing,
        {
            "c-a": [_product("p1", "A-1", "B-1"), _product("p2", "A-1")],  # shares A-1 only
            "c-b": [_product("p1", "A-1", "B-1"), _product("p3", "A-1", "B-1")],  # by products
            "c-c": [_product("p2")],  # names no label: offered by id
            "c-d": NovitaError("listing failed"),
        },
    )
    assert dict(join.names) == {"A-1": "Alpha", "B-1": "Beta"}
    assert dict(join.members) == {"Gamma": frozenset({"p2"})}
    assert join.how == {"c-a": JOIN_ID, "c-b": JOIN_ID, "c-c": JOIN_ID, "c-d": JOIN_NONE}
    assert join.method == JOIN_NONE and "not joined (their listing failed): Delta" in join.describe(
        clusters
    )
    translated = {(p.id, p.regions) for p in join.translate(listing)}
    assert translated == {
        ("p1", ("Alpha", "Beta")),
        ("p2", ("Alpha",)),
        ("p3", ("Beta",)),
        ("p2", ("Gamma",)),
    }
