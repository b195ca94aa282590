"""The console's view models: quota bars, contract status, sorting, paging, replay commands,
the chart's geometry and a customers-page line from its documents."""

from __future__ import annotations

import shlex
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ops.console.chart import HEIGHT, LEFT, TOP, WIDTH, chart_geometry, nice_ceiling, render_svg
from ops.console.models import (
    CustomerRow,
    Level,
    Pager,
    Problem,
    QuotaBar,
    Sort,
    Status,
    contract_status,
    group_problems,
    replay_command,
    shown_amount,
)
from ops.console.reads import customer_row, months_until, problem_of
from ops.inspect import CustomerItem, RejectionItem
from ops.replay import KINDS
from ops.summaries import summary_of
from shared.models import Customer

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


# ---- the quota bar ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "quota", "percent", "fill", "level"),
    [
        (0, 100, Decimal("0.0"), Decimal("0.0"), Level.OK),
        (37, 100, Decimal("37.0"), Decimal("30.8"), Level.OK),
        (79, 100, Decimal("79.0"), Decimal("65.8"), Level.OK),
        (80, 100, Decimal("80.0"), Decimal("66.7"), Level.WARN),
        (99, 100, Decimal("99.0"), Decimal("82.5"), Level.WARN),
        (100, 100, Decimal("100.0"), Decimal("83.3"), Level.OVER),
        (120, 100, Decimal("120.0"), Decimal("100.0"), Level.OVER),
        (500, 100, Decimal("500.0"), Decimal("100.0"), Level.OVER),  # clamped to the bar
        (1, 3, Decimal("33.3"), Decimal("27.8"), Level.OK),
        (0, 0, Decimal(0), Decimal("0.0"), Level.OK),
        (2, 0, Decimal(200), Decimal("100.0"), Level.OVER),  # nothing was allowed
    ],
)
def test_quota_bar_percent_fill_and_level(
    used: int, quota: int, percent: Decimal, fill: Decimal, level: Level
) -> None:
    bar = QuotaBar(used, quota)
    assert bar.percent == percent
    assert bar.fill_percent == fill
    assert bar.level is level


def test_the_80_and_100_marks_sit_where_those_percentages_fill_the_bar() -> None:
    bar = QuotaBar(10, 100)
    assert bar.marks == ((80, Decimal("66.7")), (100, Decimal("83.3")))
    # A customer exactly at a threshold fills the bar up to its mark.
    assert QuotaBar(80, 100).fill_percent == bar.marks[0][1]
    assert QuotaBar(100, 100).fill_percent == bar.marks[1][1]


@pytest.mark.parametrize("quota", [None, -1])
def test_an_unlimited_quota_has_no_percentage_and_no_fill(quota: int | None) -> None:
    bar = QuotaBar(12, quota)
    assert bar.unlimited
    assert (bar.percent, bar.fill_percent, bar.level) == (None, Decimal(0), Level.UNLIMITED)
    assert bar.text == "12 (unlimited)"
    assert QuotaBar(37, 100).text == "37 of 100 (37.0 %)"


# ---- contract status ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        (None, None, Status.IN_FORCE),
        (datetime(2025, 1, 1, tzinfo=UTC), None, Status.IN_FORCE),
        (datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), Status.IN_FORCE),
        (None, datetime(2026, 3, 1, tzinfo=UTC), Status.ENDED),
        (None, NOW, Status.ENDED),  # the end is exclusive
        (datetime(2026, 4, 1, tzinfo=UTC), None, Status.NOT_STARTED),
    ],
)
def test_contract_status(start: datetime | None, end: datetime | None, status: Status) -> None:
    assert contract_status(start, end, NOW) is status


# ---- sorting and paging ---------------------------------------------------------------------


def _row(cid: str, cost: str | None, used: int = 0, quota: int | None = 10) -> CustomerRow:
    return CustomerRow(
        cid, "pro", QuotaBar(used, quota), Decimal(cost) if cost else None, Status.IN_FORCE, None
    )


def test_sort_orders_by_the_column_with_unknown_values_last_either_way() -> None:
    rows = [_row("c", "5"), _row("a", None), _row("b", "9.5"), _row("d", "5")]
    assert [r.id for r in Sort("cost").apply(rows)] == ["c", "d", "b", "a"]
    assert [r.id for r in Sort("cost", descending=True).apply(rows)] == ["b", "c", "d", "a"]
    assert [r.id for r in Sort().apply(rows)] == ["a", "b", "c", "d"]


def test_sort_by_quota_use_puts_unlimited_customers_last() -> None:
    rows = [_row("a", None, 9, 10), _row("b", None, 1, None), _row("c", None, 2, 10)]
    assert [r.id for r in Sort("quota", descending=True).apply(rows)] == ["a", "c", "b"]


def test_sort_parses_its_url_value_and_a_click_flips_only_the_same_column() -> None:
    assert Sort.parse("-cost") == Sort("cost", descending=True)
    assert Sort.parse("nonsense") == Sort()
    assert Sort.parse(None).param == "id"
    assert Sort("cost").toggled("cost").param == "-cost"
    assert Sort("cost", descending=True).toggled("tier").param == "tier"


def test_pager_links_follow_the_cursor() -> None:
    assert Pager("token", is_first=True).has_next
    assert not Pager(None, is_first=False).has_next


def test_months_until_lists_the_picker_newest_first_across_a_year() -> None:
    assert months_until("2026-02", 4) == ["2026-02", "2026-01", "2025-12", "2025-11"]


# ---- problems and their replay commands -----------------------------------------------------


def test_replay_command_names_kind_customer_and_time_as_the_cli_parses_them() -> None:
    since = datetime(2026, 3, 1, tzinfo=UTC)
    assert replay_command("dead_letter", since=since) == (
        "blueprint usage replay --kind dead_letter --since 2026-03-01T00:00:00Z"
    )
    assert replay_command("unknown_customer", customer_id="lab_001", since=since, dry_run=True) == (
        "blueprint usage replay --kind unknown_customer --customer lab_001 "
        "--since 2026-03-01T00:00:00Z --dry-run"
    )
    # An id with shell characters stays one argument.
    odd = replay_command("invalid_event", customer_id="a b;rm")
    assert shlex.split(odd)[-1] == "a b;rm"
    # A year before 1000 keeps its four digits, as RFC 3339 (and the CLI) has them.
    early = replay_command("dead_letter", since=datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert early.endswith("--since 0999-01-02T03:04:05Z")
    # A bounded span (a past month) ends where the listed problems end.
    bounded = replay_command(
        "dead_letter",
        since=datetime(999, 12, 1, tzinfo=UTC),
        before=datetime(1000, 1, 1, tzinfo=UTC),
        dry_run=True,
    )
    assert bounded.endswith("--since 0999-12-01T00:00:00Z --before 1000-01-01T00:00:00Z --dry-run")


def test_groups_by_kind_dead_letters_first_each_with_its_command() -> None:
    since = datetime(2026, 3, 1, tzinfo=UTC)
    problems = [
        Problem("1", "unknown_customer", "no such customer", "x", NOW),
        Problem("2", "dead_letter", "gave up", "y", NOW),
        Problem("3", "bad_envelope", "not a message", None, NOW),
        Problem("4", "unknown_customer", "no such customer", "z", NOW),
    ]
    groups = group_problems(problems, since=since)
    assert [g.kind for g in groups] == ["dead_letter", "bad_envelope", "unknown_customer"]
    assert [p.id for p in groups[2].items] == ["1", "4"]
    assert groups[0].command.endswith("--kind dead_letter --since 2026-03-01T00:00:00Z")
    assert groups[0].dry_run_command == groups[0].command + " --dry-run"
    assert [g.replayable for g in groups] == [True, False, True]
    bounded = group_problems(problems, since=since, before=datetime(2026, 4, 1, tzinfo=UTC))
    assert bounded[0].command.endswith(
        "--kind dead_letter --since 2026-03-01T00:00:00Z --before 2026-04-01T00:00:00Z"
    )
    assert bounded[0].dry_run_command == bounded[0].command + " --dry-run"
    # A kind the replay does not take (a document without one) gets no runnable command.
    odd = group_problems([Problem("5", "(no kind)", None, None, NOW)], since=since, kinds=KINDS)
    assert [g.replayable for g in odd] == [False]


def test_a_rejection_keeps_the_outcome_of_an_earlier_replay() -> None:
    item = RejectionItem("r1", None, "why", "c1", NOW, {"replay_outcome": "recorded"})
    assert problem_of(item) == Problem("r1", "(no kind)", "why", "c1", NOW, "recorded")


# ---- a customers-page line ------------------------------------------------------------------


def _customer(doc_id: str, **fields: object) -> CustomerItem:
    data = {"schema_version": 1, "bundle_tier": "pro", **fields}
    return CustomerItem(doc_id, data, Customer.model_validate(data))


def test_customer_row_takes_scenes_and_cost_from_the_month_summary() -> None:
    item = _customer("c1", monthly_scene_quota=50, updated_at=datetime(2026, 3, 2, tzinfo=UTC))
    summary = summary_of(
        "c1",
        "2026-03",
        {"scenes_total": 45, "cost_cents": 123456, "folded_at": datetime(2026, 3, 9, tzinfo=UTC)},
    )
    row = customer_row(item, summary, "2026-03", NOW)
    assert (row.quota.used, row.quota.quota, row.quota.level) == (45, 50, Level.WARN)
    assert row.cost_usd == Decimal("1234.56")
    assert row.last_activity == datetime(2026, 3, 9, tzinfo=UTC)
    assert row.status is Status.IN_FORCE


def test_customer_row_without_a_summary_counts_the_customer_document() -> None:
    item = _customer(
        "c1", monthly_scene_quota=10, quota_period="2026-03", scenes_generated_this_month=4
    )
    row = customer_row(item, None, "2026-03", NOW)
    assert (row.quota.used, row.cost_usd, row.last_activity) == (4, None, None)
    assert customer_row(item, None, "2026-02", NOW).quota.used == 0


def test_an_invalid_customer_document_is_listed_with_its_problems() -> None:
    item = CustomerItem("bad", {"bundle_tier": "gold"}, None, ())
    row = customer_row(item, None, "2026-03", NOW)
    assert (row.tier, row.status, row.quota.unlimited) == ("gold", Status.INVALID, True)


def test_summary_fields_of_the_wrong_type_read_as_unknown() -> None:
    summary = summary_of("c", "2026-03", {"cost_cents": "12", "records": True, "scenes_total": 3})
    assert (summary.cost_usd, summary.records, summary.scenes) == (None, None, 3)


# ---- amounts as shown ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [("0", "0.00"), ("1240.30000000000004364", "1240.30"), ("1240.2999999999997", "1240.30"),
     ("0.005", "0.01"), ("0.0049999", "0.00"), ("23.1000000000000008", "23.10"),
     ("1e6", "1000000.00")],
)  # fmt: skip
def test_amounts_show_to_the_hundredth_rounded_half_up(value: str, shown: str) -> None:
    assert str(shown_amount(Decimal(value))) == shown


def test_a_float_sum_and_the_exact_sum_show_the_same() -> None:
    values = [0.1 * (i + 1) for i in range(157)] + [1.1 * (n + 1) for n in range(6)]
    float_sum = Decimal(repr(sum(values)))
    exact = sum((Decimal(repr(v)) for v in values), Decimal(0))
    assert float_sum != exact
    assert shown_amount(float_sum) == shown_amount(exact) == Decimal("1263.40")


# ---- the chart ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [("0", "1"), ("0.3", "0.5"), ("1", "1"), ("1.01", "2"), ("7", "10"), ("15.5", "20"),
     ("250", "500")],
)  # fmt: skip
def test_nice_ceiling(value: str, ceiling: str) -> None:
    assert nice_ceiling(Decimal(value)) == Decimal(ceiling)


def test_bars_stack_each_days_actions_in_proportion_to_the_axis() -> None:
    days = [date(2026, 3, d) for d in (1, 2, 3, 4)]
    series = {
        "scene_generated": {days[0]: Decimal("5"), days[2]: Decimal("2.5")},
        "episodes_generated": {days[0]: Decimal("10")},
    }
    g = chart_geometry(days, series)
    assert g.axis_max == Decimal(20)  # the tallest day, 15, rounded up
    plot_h = HEIGHT - TOP - 32
    by = {(b.day.day, b.action): b for b in g.bars}
    assert set(by) == {(1, "episodes_generated"), (1, "scene_generated"), (3, "scene_generated")}
    # Heights are value / axis max of the plot's height.
    assert by[(1, "episodes_generated")].height == pytest.approx(plot_h * 10 / 20, abs=0.01)
    assert by[(1, "scene_generated")].height == pytest.approx(plot_h * 5 / 20, abs=0.01)
    # The first action sits on the baseline, the next on top of it.
    first, second = by[(1, "episodes_generated")], by[(1, "scene_generated")]
    assert first.y + first.height == pytest.approx(g.baseline, abs=0.02)
    assert second.y + second.height == pytest.approx(first.y, abs=0.02)
    # One slot per day, left to right inside the plot; bars of a day share x and width.
    assert first.x == second.x
    assert LEFT < first.x < by[(3, "scene_generated")].x < WIDTH
    assert [t.value for t in g.ticks] == [0, 5, 10, 15, 20]
    assert g.ticks[-1].y == TOP


def test_an_empty_month_draws_no_bar_and_a_unit_axis() -> None:
    g = chart_geometry([date(2026, 3, 1)], {})
    assert (g.bars, g.axis_max, g.legend) == ((), Decimal(1), ())


def test_svg_escapes_labels_and_carries_each_bar_value() -> None:
    day = date(2026, 3, 1)
    svg = str(
        render_svg(
            chart_geometry([day], {"<script>": {day: Decimal("1.50")}}), title="a&b", unit="usd"
        )
    )
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "<title>a&amp;b</title>" in svg
    assert 'data-value="1.50"' in svg
    assert svg.count('<rect class="bar"') == 1
    assert svg.count('<rect class="key"') == 1  # the legend names the one action
