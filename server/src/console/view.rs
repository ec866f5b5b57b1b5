//! What the console's pages show: one struct per template (`server/templates/console`),
//! filled by [`super::pages`]. Askama escapes every value for HTML unless a template
//! marks it `safe` (only the server-drawn charts are).

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::session::ConsoleUser;

/// The frame around every page: who is signed in, the search box, the navigation.
pub struct Chrome {
    /// Display name of the user.
    pub user: String,
    /// Their role.
    pub role: &'static str,
    /// The CSRF token the page's forms echo.
    pub csrf: String,
    /// What the search box shows.
    pub query: String,
    /// The navigation, with the current page marked.
    pub nav: Vec<NavItem>,
    /// The server's version.
    pub version: &'static str,
}

/// One navigation entry.
pub struct NavItem {
    /// Link.
    pub href: &'static str,
    /// Text.
    pub label: &'static str,
    /// This page.
    pub current: bool,
}

/// The console's sections, in navigation order: (path, label, admins only).
const SECTIONS: [(&str, &str, bool); 8] = [
    ("/", "Overview", false),
    ("/stock", "Stock", false),
    ("/exceptions", "Exceptions", false),
    ("/returns", "Returns", false),
    ("/tasks", "Tasks", false),
    ("/devices", "Devices", false),
    ("/integrations", "Integrations", false),
    ("/admin", "Users and partners", true),
];

impl Chrome {
    /// The frame for `user`, with `section` (a path of [`SECTIONS`]) current.
    pub fn new(user: &ConsoleUser, name: String, csrf: &str, section: &str) -> Self {
        let admin = user.principal.role == crate::auth::Role::Admin;
        Chrome {
            user: name,
            role: user.principal.role.as_str(),
            csrf: csrf.to_owned(),
            query: String::new(),
            nav: SECTIONS
                .iter()
                .filter(|(_, _, admin_only)| admin || !admin_only)
                .map(|(href, label, _)| NavItem {
                    href,
                    label,
                    current: *href == section,
                })
                .collect(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// A figure: a label and a number.
pub struct Tile {
    /// What is counted.
    pub label: String,
    /// The count.
    pub value: String,
    /// A line under it.
    pub sub: String,
}

/// A chart drawn on the server as SVG.
pub struct Chart {
    /// Caption.
    pub title: String,
    /// The `<svg>` element (trusted: drawn by us from numbers).
    pub svg: String,
}

/// A labelled value, with a link where it names something.
pub struct Prop {
    /// Label.
    pub label: &'static str,
    /// Value.
    pub value: String,
    /// Link.
    pub href: Option<String>,
}

/// An open exception on the overview.
pub struct ExceptionLine {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Object concerned.
    pub object: String,
    /// Its page.
    pub object_href: Option<String>,
    /// Site name.
    pub site: String,
    /// How long it has been open.
    pub age: String,
    /// `late` past one business day (DSCSA's answer time), else empty.
    pub urgency: &'static str,
}

/// Sign-in page.
#[derive(Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    /// CSRF token.
    pub csrf: String,
    /// Where to go afterwards.
    pub next: String,
    /// The name typed, kept after a failure.
    pub username: String,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

/// A refusal, with its reason.
#[derive(Template)]
#[template(path = "console/refusal.html")]
pub struct RefusalPage<'a> {
    /// Heading.
    pub title: &'a str,
    /// Why.
    pub message: &'a str,
}

/// The overview.
#[derive(Template)]
#[template(path = "console/overview.html")]
pub struct OverviewPage {
    /// Frame.
    pub chrome: Chrome,
    /// Today's date (UTC).
    pub today: String,
    /// Today's figures.
    pub tiles: Vec<Tile>,
    /// Open exceptions, oldest first.
    pub exceptions: Vec<ExceptionLine>,
    /// Documents waiting for projection.
    pub projection_backlog: u64,
    /// Scanners not synced for a day.
    pub stale_devices: u64,
    /// Scanners.
    pub devices: u64,
    /// Refused sync messages this week.
    pub refusals: u64,
    /// Charts.
    pub charts: Vec<Chart>,
}

/// A search hit.
pub struct Hit {
    /// Link.
    pub href: String,
    /// Text.
    pub label: String,
    /// More.
    pub detail: String,
}

/// Search results, when a query names nothing or several things.
#[derive(Template)]
#[template(path = "console/search.html")]
pub struct SearchPage {
    /// Frame (with the query).
    pub chrome: Chrome,
    /// What was understood.
    pub message: String,
    /// Candidates.
    pub hits: Vec<Hit>,
}

/// One event of a timeline.
pub struct TimelineEvent {
    /// ISO time.
    pub time: String,
    /// Shown time.
    pub time_short: String,
    /// Business step.
    pub step: String,
    /// Disposition.
    pub disposition: String,
    /// Event type and action, and how it names the object.
    pub what: String,
    /// Site and location.
    pub place: String,
    /// User and device.
    pub who: String,
    /// EPCIS event id.
    pub event_id: String,
}

/// A pack's or container's state and history.
#[derive(Template)]
#[template(path = "console/pack.html")]
pub struct UnitPage {
    /// Frame.
    pub chrome: Chrome,
    /// Heading.
    pub heading: String,
    /// State.
    pub props: Vec<Prop>,
    /// Events, newest first.
    pub events: Vec<TimelineEvent>,
    /// Older events.
    pub more_href: Option<String>,
    /// The printable report.
    pub report_href: String,
    /// The EPCIS download.
    pub epcis_href: String,
    /// A logistic unit.
    pub is_container: bool,
    /// Its SSCC.
    pub sscc: String,
}

/// One row of a container's tree.
pub struct TreeRow {
    /// Link.
    pub href: String,
    /// Identifier.
    pub label: String,
    /// Level below the container.
    pub depth: u32,
    /// Lot.
    pub lot: String,
    /// Expiry.
    pub expiry: String,
    /// Status.
    pub status: String,
    /// Location.
    pub location: String,
}

/// A container's contents.
#[derive(Template)]
#[template(path = "console/container.html")]
pub struct ContainerPage {
    /// Frame.
    pub chrome: Chrome,
    /// The SSCC.
    pub sscc: String,
    /// Its state in a line.
    pub summary: String,
    /// This page of the tree.
    pub items: Vec<TreeRow>,
    /// The next page.
    pub more_href: Option<String>,
}

/// The stock filters as typed.
#[derive(Default)]
pub struct StockFilter {
    /// GTIN.
    pub gtin: String,
    /// Lot.
    pub lot: String,
    /// Status.
    pub status: String,
    /// Site.
    pub site_id: String,
    /// Location at the site.
    pub location: String,
    /// ISO date.
    pub expiry_before: String,
}

/// Packs the filter covers at one site and location.
pub struct StockPlace {
    /// Site name.
    pub site: String,
    /// Location, as scanned.
    pub location: String,
    /// The stock page filtered to it.
    pub href: String,
    /// Packs.
    pub count: u64,
}

/// A site to choose.
pub struct SiteOption {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// A stock line.
pub struct StockRow {
    /// GTIN.
    pub gtin: String,
    /// Product name.
    pub product: String,
    /// Lot.
    pub lot: String,
    /// Lot page.
    pub lot_href: Option<String>,
    /// Expiry.
    pub expiry: String,
    /// Status.
    pub status: String,
    /// Packs.
    pub count: u64,
}

/// Stock.
#[derive(Template)]
#[template(path = "console/stock.html")]
pub struct StockPage {
    /// Frame.
    pub chrome: Chrome,
    /// Filters.
    pub f: StockFilter,
    /// Status choices (value, label).
    pub statuses: Vec<(&'static str, &'static str)>,
    /// Sites.
    pub sites: Vec<SiteOption>,
    /// Expiry profile.
    pub chart: Option<Chart>,
    /// Lines.
    pub lines: Vec<StockRow>,
    /// Next page.
    pub more_href: Option<String>,
    /// Where the packs the filter covers are, most first.
    pub places: Vec<StockPlace>,
}

/// Packs of a lot at one place.
pub struct PlaceRow {
    /// Site.
    pub site: String,
    /// Location.
    pub location: String,
    /// Status.
    pub status: String,
    /// Packs.
    pub count: u64,
}

/// Packs of a lot shipped on one order.
pub struct ShippedRow {
    /// Order.
    pub order: String,
    /// Customer.
    pub to: String,
    /// Last shipping time.
    pub when: String,
    /// Packs.
    pub count: u64,
}

/// One pack of a lot.
pub struct LotPack {
    /// Link.
    pub href: String,
    /// Serial.
    pub serial: String,
    /// Status.
    pub status: String,
    /// Site.
    pub site: String,
    /// Location.
    pub location: String,
    /// Order.
    pub order: String,
    /// Last event.
    pub when: String,
}

/// Recall impact of a lot.
#[derive(Template)]
#[template(path = "console/lot.html")]
pub struct LotPage {
    /// Frame.
    pub chrome: Chrome,
    /// GTIN.
    pub gtin: String,
    /// Lot.
    pub lot: String,
    /// Product name.
    pub product: String,
    /// Recalled.
    pub recalled: bool,
    /// Expiry extension.
    pub extended: Option<String>,
    /// Path of this page.
    pub base: String,
    /// Totals.
    pub tiles: Vec<Tile>,
    /// On hand by place.
    pub on_hand: Vec<PlaceRow>,
    /// Shipped by order.
    pub shipped: Vec<ShippedRow>,
    /// The packs, one page.
    pub packs: Vec<LotPack>,
    /// Next page of packs.
    pub more_href: Option<String>,
}

/// An exception in the work queue.
pub struct ExceptionCard {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Site.
    pub site: String,
    /// Raised at.
    pub raised: String,
    /// Open for (or was open for).
    pub age: String,
    /// Object.
    pub object: String,
    /// Its page.
    pub object_href: Option<String>,
    /// What was found.
    pub detail: String,
    /// The resolution note.
    pub resolution: Option<String>,
    /// When resolved.
    pub resolved_at: String,
    /// By whom.
    pub resolved_by: String,
    /// Who works on it (display name).
    pub assigned: String,
    /// What was done, oldest first.
    pub notes: Vec<NoteLine>,
}

/// One entry of an exception's audit.
pub struct NoteLine {
    /// When.
    pub when: String,
    /// Who.
    pub who: String,
    /// What.
    pub text: String,
}

/// A user to choose.
pub struct Person {
    /// User id.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// Exceptions.
#[derive(Template)]
#[template(path = "console/exceptions.html")]
pub struct ExceptionsPage {
    /// Frame.
    pub chrome: Chrome,
    /// `open` or `resolved`.
    pub state: String,
    /// What just happened.
    pub notice: Option<String>,
    /// This page.
    pub items: Vec<ExceptionCard>,
    /// Who exceptions can be assigned to.
    pub people: Vec<Person>,
    /// Next page.
    pub more_href: Option<String>,
}

/// The integrations page.
#[derive(Template)]
#[template(path = "console/integrations.html")]
pub struct IntegrationsPage {
    /// Frame.
    pub chrome: Chrome,
    /// What just happened.
    pub notice: Option<String>,
    /// Webhook subscriptions.
    pub subscriptions: Vec<SubscriptionRow>,
    /// The newest outcomes, newest first.
    pub recent: Vec<OutcomeRow>,
}

/// A webhook subscription and its delivery.
pub struct SubscriptionRow {
    /// Id.
    pub id: String,
    /// Receiver.
    pub url: String,
    /// Event types sent.
    pub types: String,
    /// `active`, `retrying`, `dead`.
    pub state: String,
    /// Delivered up to this `seq`.
    pub delivered_seq: i64,
    /// Waiting.
    pub pending: i64,
    /// Failures since the last success.
    pub attempts: i32,
    /// Last success.
    pub last_delivered: String,
    /// Next try, while retrying.
    pub next_attempt: String,
    /// Last failure.
    pub last_error: String,
}

/// One recorded outcome.
pub struct OutcomeRow {
    /// Sequence.
    pub seq: i64,
    /// Type.
    pub kind: String,
    /// Recorded at.
    pub at: String,
    /// Its task.
    pub stream: String,
}

/// A scanner and its sync.
pub struct DeviceRow {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Site.
    pub site: String,
    /// Disabled.
    pub disabled: bool,
    /// Last sync.
    pub last_sync: String,
    /// Scans and voids it held undelivered at its last report (`None`: never reported).
    pub unsent: Option<u64>,
    /// When it last reported that.
    pub unsent_at: String,
    /// Refused messages this week.
    pub refusals: u64,
    /// The latest refusal's reason.
    pub last_refusal: String,
}

/// Devices.
#[derive(Template)]
#[template(path = "console/devices.html")]
pub struct DevicesPage {
    /// Frame.
    pub chrome: Chrome,
    /// The viewer may disable scanners.
    pub admin: bool,
    /// What just happened.
    pub notice: Option<String>,
    /// Scanners.
    pub devices: Vec<DeviceRow>,
}

/// A task line.
pub struct TaskRow {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Kind.
    pub kind: String,
    /// Site.
    pub site: String,
    /// Status.
    pub status: String,
    /// Scans.
    pub scans: i64,
    /// Projection state.
    pub progress: String,
    /// Last change.
    pub updated: String,
}

/// Tasks.
#[derive(Template)]
#[template(path = "console/tasks.html")]
pub struct TasksPage {
    /// Frame.
    pub chrome: Chrome,
    /// Status filter.
    pub status: String,
    /// Status choices.
    pub statuses: Vec<(&'static str, &'static str)>,
    /// Tasks.
    pub tasks: Vec<TaskRow>,
    /// Next page.
    pub more_href: Option<String>,
}

/// A printable trace report.
#[derive(Template)]
#[template(path = "console/report.html")]
pub struct ReportPage {
    /// What it is about.
    pub subject: String,
    /// Organisation.
    pub organisation: String,
    /// When made.
    pub produced: String,
    /// By whom.
    pub produced_by: String,
    /// Rows ([`super::report::COLUMNS`]).
    pub rows: Vec<[String; 9]>,
    /// Capped.
    pub truncated: bool,
    /// The page it came from.
    pub back_href: String,
    /// The CSV.
    pub csv_href: String,
}

/// One returns verification in the log.
pub struct ReturnRow {
    /// Its page.
    pub href: String,
    /// When scanned.
    pub scanned: String,
    /// GTIN and serial.
    pub pack: String,
    /// Lot.
    pub lot: String,
    /// State (`sellable`, `quarantined`, …).
    pub verdict: String,
    /// Not verified.
    pub bad: bool,
    /// Failure reason or additional information.
    pub reason: String,
    /// Who answered.
    pub responder: String,
    /// Attempts.
    pub attempts: i32,
}

/// The returns verification log.
#[derive(Template)]
#[template(path = "console/returns.html")]
pub struct ReturnsPage {
    /// Frame.
    pub chrome: Chrome,
    /// State filter (empty: all).
    pub state: String,
    /// State choices.
    pub states: Vec<(&'static str, &'static str)>,
    /// Verifications, newest first.
    pub rows: Vec<ReturnRow>,
    /// Older.
    pub more_href: Option<String>,
}

/// One LMS exchange.
pub struct ExchangeLine {
    /// When.
    pub when: String,
    /// `outbound` / `inbound`.
    pub direction: String,
    /// HTTP status and verdict, or the error.
    pub outcome: String,
    /// How long.
    pub duration: String,
    /// The request (URL).
    pub request: String,
    /// The response body.
    pub response: String,
}

/// One returns verification with its exchanges.
#[derive(Template)]
#[template(path = "console/return.html")]
pub struct ReturnPage {
    /// Frame.
    pub chrome: Chrome,
    /// GTIN and serial.
    pub pack: String,
    /// Facts.
    pub props: Vec<Prop>,
    /// Exchanges, oldest first.
    pub exchanges: Vec<ExchangeLine>,
}

/// A user, for admins.
pub struct UserRow {
    /// User id.
    pub id: String,
    /// Whether this is the admin looking (who cannot disable themselves).
    pub me: bool,
    /// Sign-in name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Site.
    pub site: String,
    /// Disabled.
    pub disabled: bool,
}

/// A trading partner, for admins.
pub struct PartnerRow {
    /// GLN.
    pub gln: String,
    /// Name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Added.
    pub since: String,
}

/// Users and partners (admins).
#[derive(Template)]
#[template(path = "console/admin.html")]
pub struct AdminPage {
    /// Frame.
    pub chrome: Chrome,
    /// What just happened.
    pub notice: Option<String>,
    /// Users.
    pub users: Vec<UserRow>,
    /// Roles a new user may get (value, label).
    pub roles: Vec<(&'static str, &'static str)>,
    /// Sites a new user may be bound to.
    pub sites: Vec<SiteOption>,
    /// Partners.
    pub partners: Vec<PartnerRow>,
}

/// Renders a page as HTML with `status`; a template failure is a logged 500.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(
                    "<!doctype html><title>Error</title><p>Internal error; see the server log.</p>",
                ),
            )
                .into_response()
        }
    }
}

/// A page that says why a request was refused.
pub fn refusal_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(status, &RefusalPage { title, message })
}
