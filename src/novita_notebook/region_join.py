"""Which cluster a product's region label means. Products name regions by label
(``"AS-SGP-02 (Singapore)"``), clusters by ``id`` and ``name``; that a cluster's name is the
label's code is a guess no public source shows. When the name join finds nothing for a
cluster, the cluster's own ``clusterId`` listing tells which products it offers (and usually
its label). The catalog rewrites every label to the cluster's name, so everything downstream
(offers, prices, frames) compares cluster names only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from .models import Cluster, Product

__all__ = ["RegionJoin", "join_by_name", "learn_join", "JOIN_NAME", "JOIN_ID", "JOIN_NONE"]

JOIN_NAME = "name"  # the cluster's name (or id) is a label's code
JOIN_ID = "id"  # learned from the cluster's clusterId listing
JOIN_NONE = "none"  # neither: the cluster's offers are unknown until its listing answers


@dataclasses.dataclass(frozen=True)
class RegionJoin:
    """Label codes (upper case) → cluster name; ``members``: cluster name → product ids, for
    clusters whose listing named no label of their own (offered by id); ``how``: per cluster
    id, which join found it (JOIN_NAME, JOIN_ID or JOIN_NONE)."""

    names: Mapping[str, str]
    members: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    how: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def method(self) -> str:
        """``"name"`` when every cluster joined by name, else ``"id"`` (some learned from
        their listings) or ``"none"`` (some joined by neither)."""
        values = set(self.how.values())
        if JOIN_NONE in values:
            return JOIN_NONE
        return JOIN_ID if JOIN_ID in values else JOIN_NAME

    def describe(self, clusters: Sequence[Cluster] = ()) -> str:
        """One sentence saying which join was used, for reports and frames."""
        if self.method == JOIN_NAME:
            return "regions joined by name (each cluster's name is a region label's code)"
        name_of = {c.id: c.name for c in clusters}
        by_id = sorted(name_of.get(c, c) for c, how in self.how.items() if how == JOIN_ID)
        lost = sorted(name_of.get(c, c) for c, how in self.how.items() if how == JOIN_NONE)
        text = "regions joined by id: cluster names are not the products' region labels"
        if by_id:
            text += f"; learned from each region's own listing: {', '.join(by_id)}"
        if lost:
            text += f"; not joined (their listing failed): {', '.join(lost)}"
        return text

    def translate(self, products: Iterable[Product]) -> list[Product]:
        """``products`` with each label code replaced by its cluster's name (codes no cluster
        claims stay), plus one copy per member cluster of each product it offers by id."""
        out: list[Product] = []
        first: dict[str, Product] = {}
        for product in products:
            regions = tuple(dict.fromkeys(self.names.get(r.upper(), r) for r in product.regions))
            if regions != product.regions:
                product = dataclasses.replace(product, regions=regions)
            out.append(product)
            first.setdefault(product.id, product)
        for cluster_name, ids in self.members.items():
            for product_id in sorted(ids):
                product = first.get(product_id)
                if product is not None and cluster_name not in product.regions:
                    out.append(dataclasses.replace(product, regions=(cluster_name,)))
        return out


def _codes(products: Iterable[Product]) -> dict[str, set[str]]:
    """Label code (upper) → ids of the products listing it."""
    found: dict[str, set[str]] = {}
    for product in products:
        for code in product.regions:
            found.setdefault(code.upper(), set()).add(product.id)
    return found


def join_by_name(
    clusters: Sequence[Cluster], products: Iterable[Product]
) -> tuple[dict[str, str], list[Cluster]]:
    """(label code → cluster name, clusters no label names) by the guess: a cluster's name
    (or its id) is the code before " (" of its products' labels."""
    codes = _codes(products)
    names: dict[str, str] = {}
    unmatched: list[Cluster] = []
    for cluster in clusters:
        hit = next((k for k in (cluster.name.upper(), cluster.id.upper()) if k in codes), None)
        if hit is None:
            unmatched.append(cluster)
        else:
            names[hit] = cluster.name
    return names, unmatched


def learn_join(
    clusters: Sequence[Cluster],
    products: Sequence[Product],
    listings: Mapping[str, Sequence[Product] | Exception],
) -> RegionJoin:
    """The join, by name where it works and through each remaining cluster's own listing
    (``listings``: cluster id → its ``clusterId`` listing, entries as the API gave them):
    the label its entries share, else the label whose products are exactly the listing's,
    else the listing's product ids themselves."""
    names, unmatched = join_by_name(clusters, products)
    how = {c.id: JOIN_NAME for c in clusters if c not in unmatched}
    members: dict[str, frozenset[str]] = {}
    codes = _codes(products)
    for cluster in unmatched:
        listing = listings.get(cluster.id)
        if listing is None or isinstance(listing, Exception):
            how[cluster.id] = JOIN_NONE
            continue
        free = {code for code in codes if code not in names}
        code = _code_of(listing, codes, free)
        if code is not None:
            names[code] = cluster.name
        else:
            members[cluster.name] = frozenset(p.id for p in listing)
        how[cluster.id] = JOIN_ID
    return RegionJoin(names, members, how)


def _code_of(
    listing: Sequence[Product], codes: Mapping[str, set[str]], free: set[str]
) -> str | None:
    """The one unclaimed label code a region's listing stands for, or None when it cannot be
    told: the code every entry lists (the listing keeps only its own region, or every entry
    shares one), else the code whose products are exactly the listing's."""
    if not listing:
        return None
    shared = set.intersection(*({c.upper() for c in p.regions} for p in listing)) & free
    if len(shared) == 1:
        return shared.pop()
    ids = {p.id for p in listing}
    exact = {code for code in free if codes[code] == ids}
    if shared:
        exact &= shared
    return exact.pop() if len(exact) == 1 else None
