"""The create pipeline: validate, claim the name, judge the regions from one cached listing
and their own stock listings (fetched at once), create on the offers in the policy's order
(the next one when stock races away), record, wait if asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..api import NovitaAPI
from ..catalog import Catalog
from ..config import Config
from ..errors import CapacityError, NovitaError, ValidationError
from ..ledger import Ledger
from ..models import Cluster, Instance, InstanceActions, Product
from ..money import format_money, price_is_estimate
from ..parsing import gpu_matches
from .budget import Budget
from .idempotency import NameClaims, patiently
from .offers import (
    Offer,
    RegionVerdict,
    capacity_failure,
    describe_alternatives,
    find_alternatives,
    judge_region,
    judge_stock,
    match_gpu,
    order_offers,
    order_regions,
    unknown_gpu_error,
)
from .report import (
    BILLING_LABELS,
    OUTCOME_CHOSEN,
    OUTCOME_CREATE_FAILED,
    OUTCOME_NO_PRODUCT,
    OUTCOME_NO_STORAGE,
    OUTCOME_ROOTFS,
    OUTCOME_VOLUME,
    SIGNAL_CATALOG,
    SIGNAL_CREATE,
    SIGNAL_REGION,
    SIGNAL_VOLUME,
    Attempt,
    FallbackReport,
    describe_request,
)
from .request import CreateRequest, LaunchPlan, create_body, launch_plan
from .resources import Resources
from .storages import Mount, Storages, volume_cluster

if TYPE_CHECKING:  # pragma: no cover
    from ..guard.intents import CreateGuard

logger = logging.getLogger(__name__)


def likely_regions(
    ordered: Sequence[Cluster], pinned: Cluster | None, gpu: str | None
) -> list[str]:
    """Cluster ids whose stock a create will ask for: the clusters listing names the GPU
    types each region sells, so the candidates are known before the products listing."""
    if pinned is not None:
        return [pinned.id]
    return [
        c.id
        for c in ordered
        if gpu is None
        or not c.available_gpu_types
        or any(gpu_matches(gpu, kind) for kind in c.available_gpu_types)
    ]


def _chosen(
    request: CreateRequest,
    cluster: Cluster,
    product: Product,
    price: float,
    adopted: bool,
    offer: Offer | None,
) -> Attempt:
    """The report line of the offer created on, saying what vouched for its stock."""
    label = BILLING_LABELS.get(request.billing, request.billing)
    estimate = price_is_estimate(request.billing, request.gpu_num)
    adopted_note = " (adopted after an ambiguous create)" if adopted else ""
    signal = offer.signal if offer is not None else SIGNAL_REGION
    vouched = (
        "in stock by its region listing"
        if signal == SIGNAL_REGION
        else "stock unknown, the create succeeded"
    )
    return Attempt(
        cluster.name,
        OUTCOME_CHOSEN,
        f"chosen: {product.name} at {format_money(price, per_hour=True, estimate=estimate)} "
        f"({label}); "
        f"{vouched}{adopted_note}",
        cluster.id,
        product.id,
        product.name,
        product.price_for(request.billing) or 0.0,
        price,
        signal=signal,
    )


class Provisioner:
    """Creates instances. Collaborators: ``api`` sends, ``catalog`` lists offers and regions,
    ``config`` (the client's settings) gives default_region, ``ledger`` remembers what was made,
    ``resources`` resolves templates and registry auths, ``budget`` and ``claims`` guard spend
    and names, ``fetch(id)`` reads an instance back, ``wait(instance, ...)`` waits for it, and
    ``owner`` is what the returned Instance handles are bound to."""

    def __init__(
        self,
        *,
        api: NovitaAPI,
        catalog: Catalog,
        config: Config,
        ledger: Ledger,
        resources: Resources,
        budget: Budget,
        claims: NameClaims,
        fetch: Callable[[str], Instance],
        wait: Callable[..., Any],
        owner: InstanceActions | None = None,
        storages: Storages | None = None,
    ) -> None:
        self.api = api
        self.catalog = catalog
        self.config = config
        self.ledger = ledger
        self.resources = resources
        self.budget = budget
        self.claims = claims
        self.fetch = fetch
        self.wait = wait
        self.owner = owner
        self.storages = storages or Storages(api, catalog)

    # -- create ----------------------------------------------------------------------------------
    def provision(
        self,
        request: CreateRequest,
        listing: list[Product] | None = None,
        guard: CreateGuard | None = None,
    ) -> Instance:
        """Create what ``request`` asks for (see ``Novita.create``); ``listing`` is a batch's
        shared on-demand listing (else the catalog's cached one for the billing method).
        ``guard`` stores the instance's rules before each create request is sent."""
        clusters = patiently(self.catalog.clusters)
        region = request.region
        if region is None and request.regions is None:
            region = self.config.default_region
        ordered = order_regions(clusters, region=region, regions=request.regions)
        plan = launch_plan(request, self.resources)
        mounts = patiently(lambda: self.storages.resolve(request.network_storages))
        pinned = volume_cluster(mounts, clusters)
        if pinned is not None and request.region is not None:
            asked = self.catalog.find_region(request.region)
            if asked.id != pinned.id:  # never silently somewhere else than region= says
                raise ValidationError(
                    f"region: {asked.name} was asked for, but volume {mounts[0].storage.name!r} "
                    f"is in {pinned.name}, and an instance mounts a volume only in its region; "
                    f"give region={pinned.name!r} (or no region)",
                    field="region",
                )
        if pinned is not None and all(c.id != pinned.id for c in ordered):
            raise ValidationError(
                f"volumes: {mounts[0].storage.name!r} is in {pinned.name}, which regions= "
                "leaves out; an instance mounts a volume only in the volume's region",
                field="volumes",
            )
        # The listings the decision needs go out now, all at once, while the name is checked.
        self.catalog.prefetch(
            request.billing, likely_regions(ordered, pinned, request.gpu), request.gpu_num
        )
        name = request.name
        if request.unique_name:
            name = patiently(lambda: self.claims.claim(request.name, unique=True))
        # Held before the API check, so a concurrent create of the same name in this process
        # either sees this one in flight or, once it is done, sees it in the API.
        try:
            with self.claims.in_flight(name):
                if not request.unique_name:
                    patiently(lambda: self.claims.claim(name, unique=False))
                return self._search_and_create(request, plan, name, ordered, listing, mounts, guard)
        finally:
            if guard is not None:
                guard.settle()

    def _search_and_create(
        self,
        request: CreateRequest,
        plan: LaunchPlan,
        name: str,
        ordered: list[Cluster],
        listing: list[Product] | None,
        mounts: Sequence[Mount] = (),
        guard: CreateGuard | None = None,
    ) -> Instance:
        products = self._listing(request, listing)
        matches = match_gpu(products, request.gpu)
        if request.gpu and not matches:
            raise unknown_gpu_error(request.gpu, products, request.billing)
        report = FallbackReport(request.gpu, request.gpu_num, request.billing, request.prefer)
        join = patiently(lambda: self.catalog.region_join(billing=request.billing))
        report.region_join = join.describe(ordered)
        try:
            offers = self._plan(request, plan, ordered, matches, mounts, report)
            for offer in offers:
                instance = self._try_candidate(request, plan, name, offer, report, mounts, guard)
                if instance is not None:
                    return self._finish(instance, request, report, guard)
        except NovitaError as error:
            # Whatever stopped the search, the regions already tried stay inspectable.
            error.fallback_report = report
            raise
        raise self._capacity_error(request, report, products, ordered)

    def _plan(
        self,
        request: CreateRequest,
        plan: LaunchPlan,
        ordered: list[Cluster],
        matches: list[Product],
        mounts: Sequence[Mount],
        report: FallbackReport,
    ) -> list[Offer]:
        """Judge every region: offers and prices from the listing, then the stock of the
        regions still in the running from their own listings, fetched at once. Regions
        decided here are reported; the offers left come back in the policy's order."""
        verdicts = [
            judge_region(
                cluster,
                matches,
                gpu=request.gpu,
                billing=request.billing,
                max_price=request.max_price,
                rootfs_gb=plan.rootfs_gb,
            )
            for cluster in self._mountable(ordered, mounts, report)
        ]
        open_ids = [v.cluster.id for v in verdicts if v.candidates]
        stock = self.catalog.region_listings(open_ids, request.billing, request.gpu_num)
        judged: list[RegionVerdict] = []
        for verdict in verdicts:
            listed = stock.get(verdict.cluster.id)
            final = judge_stock(verdict, listed)
            if not final.candidates:
                signal = SIGNAL_REGION if final is not verdict else SIGNAL_CATALOG
                report.add(
                    Attempt(
                        final.cluster.name,
                        final.outcome or "",
                        final.detail or "",
                        final.cluster.id,
                        signal=signal,
                    )
                )
                continue
            if isinstance(listed, NovitaError):
                logger.info(
                    "no stock listing for %s (%s): the create will tell",
                    verdict.cluster.name,
                    listed.message,
                )
            judged.append(final)
        return order_offers(judged, request.prefer, request.billing)

    @staticmethod
    def _mountable(
        ordered: list[Cluster], mounts: Sequence[Mount], report: FallbackReport
    ) -> list[Cluster]:
        """The regions that can mount the volumes (all of them without volumes); the others
        are reported with the reason."""
        pinned = volume_cluster(mounts, ordered)
        if pinned is not None:
            volume = mounts[0].storage
            report.restriction = (
                f"only {pinned.name}: volume {volume.name!r} ({volume.id}) is there, and an "
                "instance mounts a volume only in the volume's region"
            )
        kept: list[Cluster] = []
        for cluster in ordered:
            if pinned is not None and cluster.id != pinned.id:
                outcome, signal = OUTCOME_VOLUME, SIGNAL_VOLUME
                detail = (
                    f"volume is in {pinned.name} ({mounts[0].storage.name}): not mountable here"
                )
            elif mounts and not cluster.support_network_storage:
                outcome, signal = OUTCOME_NO_STORAGE, SIGNAL_CATALOG
                detail = "no network storage: this region cannot mount network volumes"
            else:
                kept.append(cluster)
                continue
            report.add(Attempt(cluster.name, outcome, detail, cluster.id, signal=signal))
        return kept

    def _listing(self, request: CreateRequest, listing: list[Product] | None) -> list[Product]:
        """Candidates and prices: a batch's shared on-demand listing, else the catalog's cached
        unfiltered listing for the billing method (stock comes from the region listings)."""
        if listing is not None and request.billing == "onDemand":
            return listing
        return patiently(lambda: self.catalog.listing(request.billing))

    def _try_candidate(
        self,
        request: CreateRequest,
        plan: LaunchPlan,
        name: str,
        offer: Offer,
        report: FallbackReport,
        mounts: Sequence[Mount] = (),
        guard: CreateGuard | None = None,
    ) -> Instance | None:
        """Create on one offer; None (and a report line) when its stock raced away. The
        rules (``guard``) are stored before the request goes out."""
        cluster, product = offer.cluster, offer.product
        per_gpu = product.price_for(request.billing) or 0.0
        price = round(per_gpu * request.gpu_num, 6)
        body = create_body(request, plan, name, cluster, product)
        if mounts:
            body["networkStorages"] = [mount.body() for mount in mounts]
        with self.budget.reserve(name, price):
            if guard is not None:
                guard.sending(name, self.claims.token_for(name), price)
            try:
                instance_id, adopted = self.claims.send_create(body, name)
            except KeyboardInterrupt as interrupt:
                if guard is None:
                    raise
                raise KeyboardInterrupt(f"{interrupt}{guard.interrupted()}") from None
            except NovitaError as error:
                if not capacity_failure(error):
                    raise
                reason = error.reason or "INSUFFICIENT_RESOURCE"
                report.add(
                    Attempt(
                        cluster.name,
                        OUTCOME_CREATE_FAILED,
                        f"create: {reason} for {product.name} ({error.message})",
                        cluster.id,
                        product.id,
                        product.name,
                        per_gpu,
                        price,
                        signal=SIGNAL_CREATE,
                    )
                )
                return None
        if guard is not None:
            guard.made(instance_id)
        report.add(_chosen(request, cluster, product, price, adopted, offer))
        return Instance(
            id=instance_id,
            name=name,
            status="toCreate",
            cluster_id=cluster.id,
            region=cluster.name,
            product_id=product.id,
            product_name=product.name,
            gpu_num=request.gpu_num,
            image_url=plan.image,
            image_auth_id=plan.image_auth_id,
            rootfs_size=body["rootfsSize"],
            billing_mode=request.billing,
            price_per_hour=price,
            _client=self.owner,
        )

    def _finish(
        self,
        created: Instance,
        request: CreateRequest,
        report: FallbackReport,
        guard: CreateGuard | None = None,
    ) -> Instance:
        """Fetch the created instance, remember it in the ledger, wait if asked. A Ctrl-C
        says what exists, that it is guarded, and how to delete it."""
        try:
            return self._read_back_and_wait(created, request, report)
        except KeyboardInterrupt:
            guarded = guard.interrupted() if guard is not None else ""
            raise KeyboardInterrupt(
                f"create interrupted: {created.name} (id {created.id}) exists and bills once "
                f"it runs.{guarded} Delete it with novita.delete({created.name!r})."
            ) from None

    def _read_back_and_wait(
        self, created: Instance, request: CreateRequest, report: FallbackReport
    ) -> Instance:
        try:
            instance = self.fetch(created.id)
        except NovitaError as error:
            # The instance exists: never lose it because a read failed; return what we know.
            logger.warning("created %s but could not read it back: %s", created.id, error.message)
            instance = created
        if instance.price_per_hour is None:
            instance.price_per_hour = created.price_per_hour
        instance.fallback_report = report
        try:
            self.ledger.record(instance)
        except Exception:  # the ledger is a convenience: never lose the instance over it
            logger.exception("could not record %s in the ledger", instance.id)
        if not request.wait:
            return instance
        options: dict[str, Any] = {"until": request.wait_until, "progress": request.progress}
        if request.timeout is not None:  # None keeps wait()'s own default limit
            options["timeout"] = request.timeout
        try:
            waited = self.wait(instance, **options)
        except NovitaError as error:
            # The instance exists even though waiting failed: say which one.
            error.created_instance = instance
            raise
        if isinstance(waited, Instance):
            waited.fallback_report = report
            if waited.price_per_hour is None:
                waited.price_per_hour = instance.price_per_hour
            return waited
        return instance

    def _capacity_error(
        self,
        request: CreateRequest,
        report: FallbackReport,
        products: Sequence[Product],
        ordered: Sequence[Cluster],
    ) -> NovitaError:
        outcomes = {a.outcome for a in report.attempts}
        if OUTCOME_ROOTFS in outcomes and outcomes <= {OUTCOME_ROOTFS, OUTCOME_NO_PRODUCT}:
            # Only the disk size stands in the way: that is the user's argument, not capacity.
            return ValidationError(
                f"rootfs_gb: {request.rootfs_gb} GB is more than any matching product allows "
                f"({'; '.join(a.region + ': ' + a.detail for a in report.attempts if a.outcome == OUTCOME_ROOTFS)})",
                field="rootfs_gb",
            )
        alternatives = find_alternatives(
            products, gpu=request.gpu, billing=request.billing, tried=ordered
        )
        lines = "\n".join(f"  {line}" for line in [*report.header(), *report.lines()])
        message = (
            f"no region could serve {describe_request(request.gpu, request.gpu_num, request.billing)}:\n"
            f"{lines}"
        )
        if alternatives:
            message += f"\nAvailable now: {describe_alternatives(alternatives)}"
        else:
            message += "\nNothing else is available right now."
        return CapacityError(
            message,
            reason="INSUFFICIENT_RESOURCE",
            attempts=list(report.attempts),
            alternatives=alternatives,
            fallback_report=report,
        )

    def fresh_listing(self) -> list[Product]:
        """The current unfiltered on-demand listing (refreshed once, e.g. by a batch): offers
        and prices; stock per GPU count comes from the region listings each create reads."""
        return patiently(lambda: self.catalog.listing("onDemand", refresh=True))
