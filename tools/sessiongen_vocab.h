/* The vocabulary of logferry-sessiongen: products, their versions, and the message templates each
 * one writes. Template text uses placeholders that the generator fills in:
 *
 *   {d} duration in ms (short)   {D} duration in ms (long)   {s} seconds      {E} session age in s
 *   {n} small count              {N} large count             {b} bytes        {k} KiB
 *   {y} percentage               {f} new file name           {F} one of the session's documents
 *   {p} path (the host's style)  {i} 8 hex digits            {x} 16 hex digits {u} UUID
 *   {h} remote host name         {a} IPv4 address            {r} port         {j} job id
 *   {w} a word (names, terms)    {=a|b|c} one of the choices, the first ones more often
 *   session context: {v} version {B} build {o} OS {C} CPUs {R} RAM MiB {l} locale {z} time zone
 *                    {m} machine id {U} user {S} site {P} pid {W} working directory
 *                    {L} licence id {T} licence type {g} licence expiry date
 *   {A} the product name (literal text, not a parameter)
 *
 * The ground truth names each template by its text with every placeholder replaced by <*>.
 * Body templates have a weight (a few used a lot, a long tail); start-up templates use the weight
 * as the percentage of sessions that write them. vmin/vmax bound the versions (indexes into the
 * product's version list, vmax exclusive) that know the message: features arrive, bugs get fixed. */
#ifndef SESSIONGEN_VOCAB_H
#define SESSIONGEN_VOCAB_H

enum { SG_DEBUG, SG_INFO, SG_WARN, SG_ERROR, SG_FATAL, SG_NLEVELS };
enum { SG_FMT_CLASSIC, SG_FMT_JSONL, SG_NFORMATS };
enum { SG_KIND_DESKTOP, SG_KIND_SERVER, SG_KIND_CLI };
enum { SG_STACK_JAVA, SG_STACK_NATIVE };
enum { SG_F_STACK = 1 };

typedef struct sg_tpl_def {
    unsigned weight;
    unsigned char level;
    unsigned char flags;
    signed char vmin, vmax;
    const char *component;
    const char *text;
} sg_tpl_def;

#define T(w, l, c, t) {w, l, 0, 0, 99, c, t}
#define TS(w, l, c, t) {w, l, SG_F_STACK, 0, 99, c, t}
#define TV(w, l, c, t, a, b) {w, l, 0, a, b, c, t}
#define TVS(w, l, c, t, a, b) {w, l, SG_F_STACK, a, b, c, t}
#define SG_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

#define SG_MAX_VERSIONS 6

typedef struct sg_product_def {
    const char *name;
    const char *slug;
    int format;
    int kind;
    int nversions;
    const char *versions[SG_MAX_VERSIONS];
    const char *builds[SG_MAX_VERSIONS];
    double release_frac[SG_MAX_VERSIONS]; /* when the version ships, as a fraction of the range */
    double crash_p[SG_MAX_VERSIONS];
    double share;                          /* how many users run it */
    double size_median, size_sigma;        /* body of the size distribution (bytes) */
    double tail_p, tail_xm, tail_alpha;    /* the long tail: probability, start, Pareto index */
    double dur_median_s, dur_sigma;        /* session duration */
    const sg_tpl_def *startup;
    int nstartup;
    const sg_tpl_def *body;
    int nbody;
    const sg_tpl_def *shutdown; /* the last one is the shutdown line */
    int nshutdown;
    const sg_tpl_def *crash;
    int ncrash;
    int stack_style;
    const char *const *frames;
    int nframes;
    const char *const *threads;
    int nthreads;
    const char *const *exts;
    int nexts;
} sg_product_def;

/* ---- Shared choice lists ---- */
#define SG_DIALOGS "Export PDF|Preferences|Layer Properties|Page Setup|Find and Replace|Print|" \
                   "Insert Image|Symbol Library|Colour Picker|Dimension Style|About"
#define SG_PLUGINS "com.atlas.dimensions|com.atlas.bim-link|org.example.gears|com.vendor.stamps|" \
                   "com.atlas.pdf-import"
#define SG_QUERIES "get_document|list_projects|insert_event|update_job|search_users|count_sessions|" \
                   "report_monthly"

/* ---- Atlas Studio: a desktop design application (classic format, Java-style traces) ---- */
static const sg_tpl_def atlas_startup[] = {
    T(100, SG_INFO, "app.startup", "{A} {v} (build {B}) starting"),
    T(100, SG_INFO, "app.startup", "OS: {o}, {C} CPUs, {R} MiB RAM"),
    T(100, SG_INFO, "app.startup", "Locale {l}, time zone {z}"),
    T(100, SG_INFO, "app.licence", "Licence {L} ({T}) valid until {g}"),
    T(100, SG_INFO, "app.startup", "Machine id {m}, user id {U}, site {S}"),
    T(100, SG_INFO, "app.startup", "Process {P} started in {W}"),
    T(35, SG_DEBUG, "app.startup", "JVM options: -Xmx{=4096|8192|2048|16384}m -XX:+UseG1GC"),
    T(100, SG_INFO, "render.gl", "Renderer: {=Direct3D 11|OpenGL 4.6|Metal} on \"{=Intel Iris Xe|NVIDIA RTX A2000|AMD Radeon Pro W6600|Apple M2}\""),
    T(100, SG_INFO, "plugin.host", "Loaded {n} plugins in {d} ms"),
    T(100, SG_INFO, "app.startup", "Startup completed in {D} ms"),
};

static const sg_tpl_def atlas_body[] = {
    T(4000, SG_INFO, "ui.main", "Command {=Select|Move|Zoom|Pan|Undo|Copy|Paste|Rotate|Redo|Delete|Group|Align|Measure|Mirror|Trim} executed in {d} ms"),
    T(2500, SG_INFO, "ui.main", "Tool changed to {=Pen|Line|Rectangle|Text|Brush|Ellipse|Eraser|Fill|Eyedropper|Polygon}"),
    T(1200, SG_INFO, "ui.dialog", "Opened dialog \"{=" SG_DIALOGS "}\" in {d} ms"),
    T(1150, SG_INFO, "ui.dialog", "Closed dialog \"{=" SG_DIALOGS "}\" after {s} s"),
    T(900, SG_INFO, "ui.main", "Zoom level set to {y}%"),
    T(800, SG_INFO, "doc.io", "Autosave of \"{F}\" finished in {d} ms"),
    T(600, SG_INFO, "doc.io", "Saved document \"{F}\" ({b} bytes) in {d} ms"),
    T(600, SG_INFO, "ui.main", "Layer \"{w}\" {=hidden|shown|locked|unlocked}"),
    T(400, SG_INFO, "doc.io", "Opened document \"{F}\" ({b} bytes) in {D} ms"),
    T(300, SG_DEBUG, "undo.stack", "Pushed action {=move|style|paste|delete|rotate} ({n} objects)"),
    T(300, SG_INFO, "undo.stack", "Undo stack depth {n}, memory {k} KiB"),
    T(250, SG_INFO, "doc.export", "Exported \"{F}\" to PDF: {n} pages, {b} bytes in {D} ms"),
    TV(200, SG_INFO, "ui.main", "Command palette used: \"{w}\"", 1, 99),
    T(200, SG_DEBUG, "render.gl", "Frame rendered in {d} ms ({N} primitives)"),
    T(200, SG_INFO, "doc.io", "Imported image {p} ({b} bytes)"),
    T(150, SG_INFO, "ui.main", "Search for \"{w}\" returned {n} results in {d} ms"),
    T(150, SG_INFO, "doc.export", "Exported \"{F}\" to PNG at {=300|150|72|600} dpi: {b} bytes in {D} ms"),
    T(150, SG_INFO, "app.licence", "Licence heartbeat ok ({h}, {d} ms)"),
    TV(150, SG_INFO, "ui.main", "AI assist suggested {n} completions in {d} ms", 3, 99),
    T(120, SG_WARN, "render.gl", "Frame time {d} ms exceeded budget of 16 ms"),
    TV(120, SG_INFO, "net.sync", "Cloud sync of \"{F}\" completed: {b} bytes up, {b} bytes down in {D} ms", 2, 99),
    T(100, SG_INFO, "doc.io", "Recent files list updated ({n} entries)"),
    T(100, SG_INFO, "script.engine", "Script \"{f}\" ran in {D} ms, {n} objects changed"),
    T(100, SG_INFO, "plugin.host", "Plugin {=" SG_PLUGINS "} {=activated|deactivated} in {d} ms"),
    T(100, SG_DEBUG, "doc.io", "Reading chunk {n} of {n} at offset {N}"),
    T(80, SG_DEBUG, "render.gl", "Texture cache hit ratio {y}%"),
    T(80, SG_INFO, "doc.io", "Created new document \"{f}\" from template \"{=A4 Portrait|Blank|A3 Landscape|Site Plan}\""),
    TV(80, SG_INFO, "doc.export", "Exported \"{F}\" to DXF: {N} entities, {b} bytes in {D} ms", 1, 99),
    T(80, SG_DEBUG, "cache.disk", "Cache entry {x} stored ({b} bytes)"),
    T(80, SG_INFO, "render.gl", "Viewport resized to {=1920x1080|2560x1440|1280x720|3840x2160}"),
    T(60, SG_DEBUG, "cache.disk", "Cache entry {x} evicted after {s} s"),
    T(60, SG_INFO, "doc.export", "Print job {j} sent to \"{=Microsoft Print to PDF|HP LaserJet M404|Canon iR-ADV C5535}\": {n} pages"),
    T(60, SG_INFO, "ui.dialog", "Preferences changed: {=units|grid|snap|theme|language} = {w}"),
    TV(60, SG_INFO, "doc.export", "Export to SVG of \"{F}\" finished in {D} ms", 3, 99),
    T(50, SG_INFO, "doc.io", "Closed document \"{F}\" ({n} unsaved changes discarded)"),
    T(50, SG_INFO, "ui.main", "Workspace \"{=Drafting|Annotation|Review|3D Modelling}\" restored"),
    T(50, SG_INFO, "cache.disk", "Disk cache trimmed to {k} KiB ({n} entries removed)"),
    T(40, SG_WARN, "ui.main", "UI thread blocked for {D} ms"),
    TV(40, SG_INFO, "ui.main", "Collaboration session {u} joined by {n} participants", 3, 99),
    T(40, SG_DEBUG, "app.licence", "Licence token {x} renewed, expires in {s} s"),
    T(30, SG_DEBUG, "script.engine", "Compiled script {f} in {d} ms"),
    T(30, SG_WARN, "doc.io", "Document \"{F}\" contains {n} unresolved font references"),
    T(30, SG_INFO, "update.check", "Update check: {=up to date|update available|skipped (offline)}"),
    TV(25, SG_WARN, "net.sync", "Cloud sync of \"{F}\" retried after HTTP {=503|429|502|504} (attempt {n})", 2, 99),
    TS(25, SG_ERROR, "doc.io", "Could not open {p}: {=access denied|file is locked by another user|unsupported format version|checksum mismatch}"),
    T(20, SG_WARN, "plugin.host", "Plugin {=" SG_PLUGINS "} took {D} ms to respond"),
    T(20, SG_WARN, "app.main", "Low memory: {k} KiB free of {R} MiB"),
    T(20, SG_WARN, "app.licence", "Licence server {h} did not answer within {d} ms, retrying"),
    T(20, SG_WARN, "doc.io", "Save of \"{F}\" took {D} ms (network drive {h})"),
    T(20, SG_WARN, "script.engine", "Script \"{f}\" used deprecated call {=Doc.getLayers|App.alert|Shape.setFill} at line {n}"),
    T(20, SG_INFO, "cache.disk", "Thumbnail cache rebuilt: {n} thumbnails in {D} ms"),
    TS(15, SG_ERROR, "doc.export", "PDF export of \"{F}\" failed: {=font embedding failed|out of disk space|page size too large}"),
    TS(10, SG_ERROR, "plugin.host", "Plugin {=" SG_PLUGINS "} threw {=java.lang.NullPointerException|java.lang.ClassCastException} after {d} ms"),
    TVS(12, SG_ERROR, "render.gl", "Shader compilation failed for {=outline|shadow|hatch} (driver {=31.0.15.3699|535.113.01|23.20.14})", 0, 3),
    TVS(14, SG_ERROR, "app.main", "NullPointerException in selection handler ({n} objects selected)", 3, 99),
    TV(10, SG_ERROR, "net.sync", "Sync conflict on \"{F}\": local revision {n}, remote revision {n}", 2, 99),
    TV(8, SG_ERROR, "net.sync", "Upload of \"{F}\" failed: HTTP {=500|502|503} from {h}", 2, 99),
    T(10, SG_WARN, "doc.io", "Recovered {n} objects from autosave file {p}"),
    T(4, SG_ERROR, "app.licence", "Licence {L} rejected by {h}: {=seat limit reached|expired|revoked}"),
};

static const sg_tpl_def atlas_shutdown[] = {
    T(100, SG_INFO, "app.main", "Preferences saved ({n} entries)"),
    T(100, SG_INFO, "app.main", "Shutdown complete after {E} s"),
};

static const sg_tpl_def atlas_crash[] = {
    TS(70, SG_FATAL, "app.main", "Unhandled exception in thread \"{=AWT-EventQueue-0|main|render-1|io-worker-2}\": {=java.lang.OutOfMemoryError: Java heap space|java.lang.NullPointerException|java.lang.IllegalStateException: document closed}"),
    T(30, SG_FATAL, "render.gl", "GPU driver reset detected (code {i}), terminating"),
};

static const char *const atlas_frames[] = {
    "com.atlas.ui.MainWindow.dispatch(MainWindow.java:",
    "com.atlas.ui.CommandBus.execute(CommandBus.java:",
    "com.atlas.ui.dialog.ExportDialog.onOk(ExportDialog.java:",
    "com.atlas.doc.DocumentReader.open(DocumentReader.java:",
    "com.atlas.doc.DocumentReader.readChunk(DocumentReader.java:",
    "com.atlas.doc.Document.save(Document.java:",
    "com.atlas.export.PdfWriter.writePage(PdfWriter.java:",
    "com.atlas.export.PdfWriter.embedFont(PdfWriter.java:",
    "com.atlas.render.GlCanvas.paint(GlCanvas.java:",
    "com.atlas.render.ShaderCache.compile(ShaderCache.java:",
    "com.atlas.select.SelectionHandler.update(SelectionHandler.java:",
    "com.atlas.plugin.PluginHost.invoke(PluginHost.java:",
    "com.atlas.sync.CloudClient.upload(CloudClient.java:",
    "java.base/java.io.FileInputStream.open0(Native Method",
    "java.base/java.io.FileInputStream.open(FileInputStream.java:",
    "java.desktop/java.awt.EventDispatchThread.pumpOneEventForFilters(EventDispatchThread.java:",
    "java.desktop/java.awt.EventQueue.dispatchEvent(EventQueue.java:",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:",
    "java.base/java.util.concurrent.FutureTask.run(FutureTask.java:",
    "java.base/java.lang.Thread.run(Thread.java:",
};
static const char *const atlas_threads[] = {"AWT-EventQueue-0", "main", "render-1", "io-worker-2",
                                            "autosave", "licence-heartbeat"};
static const char *const atlas_exts[] = {".atl", ".atl", ".atl", ".dxf", ".pdf", ".png"};

/* ---- Beacon Server: a collaboration server (JSON lines) ---- */
static const sg_tpl_def beacon_startup[] = {
    T(100, SG_INFO, "app.startup", "{A} {v} (build {B}) starting"),
    T(100, SG_INFO, "app.startup", "OS: {o}, {C} CPUs, {R} MiB RAM"),
    T(100, SG_INFO, "app.startup", "Locale {l}, time zone {z}"),
    T(100, SG_INFO, "app.licence", "Licence {L} ({T}) valid until {g}"),
    T(100, SG_INFO, "app.startup", "Machine id {m}, service account {U}, site {S}"),
    T(100, SG_INFO, "app.startup", "Process {P} started in {W}"),
    T(100, SG_INFO, "config", "Configuration loaded from {p} ({n} keys)"),
    T(100, SG_INFO, "db.pool", "Database pool ready: {n} connections to {h}:{=5432|3306}"),
    T(100, SG_INFO, "http.server", "Listening on 0.0.0.0:{=8443|8080|9000}"),
    T(100, SG_INFO, "app.startup", "Startup completed in {D} ms"),
};

static const sg_tpl_def beacon_body[] = {
    T(5000, SG_INFO, "http.server", "{=GET|POST|PUT|DELETE} /api/v2/{=documents|projects|users|jobs|reports}/{i} {=200|201|304|204|404|403} {d} ms"),
    T(2000, SG_INFO, "db.pool", "Query {=" SG_QUERIES "} took {d} ms ({n} rows)"),
    T(800, SG_INFO, "http.server", "GET /healthz 200 {d} ms"),
    T(800, SG_DEBUG, "net.http", "Response {=200|201|204|304|404} for {x} in {d} ms ({b} bytes)"),
    T(400, SG_DEBUG, "db.pool", "Connection {n} returned to pool (in use {n} of {n})"),
    T(300, SG_DEBUG, "http.server", "Request {u} from {a} headers parsed in {d} ms"),
    T(300, SG_INFO, "storage", "Stored blob {x} ({b} bytes) in {d} ms"),
    T(300, SG_INFO, "cluster", "Heartbeat from {h} ({d} ms)"),
    T(200, SG_INFO, "auth", "User {w} logged in from {a} via {=sso|password|api-key}"),
    T(200, SG_DEBUG, "cache", "Cache key {x} evicted ({b} bytes)"),
    T(200, SG_DEBUG, "app.main", "GC pause {d} ms, freed {b} bytes"),
    T(150, SG_INFO, "jobs.scheduler", "Job {j} ({=report|export|cleanup|reindex|mail-digest}) queued"),
    T(150, SG_INFO, "jobs.scheduler", "Job {j} started on worker {n}"),
    T(140, SG_INFO, "jobs.scheduler", "Job {j} finished in {D} ms, {N} items"),
    T(100, SG_INFO, "auth", "Session {x} expired after {s} s"),
    T(100, SG_INFO, "metrics", "Metrics flushed: {N} series in {d} ms"),
    T(80, SG_INFO, "auth", "API key {i} used by {w}"),
    TV(80, SG_INFO, "api.v2", "Webhook {u} delivered to {h} ({=200|202|204}) in {d} ms", 1, 99),
    T(60, SG_INFO, "cache", "Cache {=documents|users|permissions} hit ratio {y}% over {N} lookups"),
    T(60, SG_INFO, "app.main", "Memory: heap {k} KiB, {n} threads, {y}% CPU"),
    TV(40, SG_INFO, "http.server", "WebSocket {u} opened by {a}", 2, 99),
    TV(38, SG_INFO, "http.server", "WebSocket {u} closed after {s} s ({N} messages)", 2, 99),
    T(40, SG_WARN, "db.pool", "Slow query {=report_monthly|search_users|list_projects} took {D} ms ({N} rows)"),
    T(30, SG_INFO, "mail", "Sent {n} notification mails via {h} in {d} ms"),
    T(30, SG_INFO, "api.v2", "Rate limit for client {i}: {n} of {N} requests used"),
    T(20, SG_WARN, "auth", "Failed login for {w} from {a} ({n} attempts)"),
    T(20, SG_INFO, "storage", "Deleted {n} expired blobs, freed {b} bytes"),
    T(10, SG_INFO, "jobs.scheduler", "Cron trigger {=hourly-cleanup|nightly-report|weekly-digest} fired"),
    T(10, SG_INFO, "search", "Index {=documents|users} refreshed: {N} docs in {D} ms"),
    T(10, SG_INFO, "app.main", "Feature flag {=new-editor|fast-export|dark-mode|audit-v2} is {=on|off} for tenant {i}"),
    T(10, SG_WARN, "db.pool", "Pool exhausted, waited {d} ms for a connection"),
    T(10, SG_WARN, "jobs.scheduler", "Job {j} retry {n} after {=timeout|worker lost|rate limited}"),
    TV(8, SG_WARN, "api.v2", "Webhook {u} to {h} failed with {=503|500|502|timeout}, retry in {s} s", 1, 99),
    T(8, SG_WARN, "storage", "Disk usage on {W} at {y}%"),
    TS(8, SG_ERROR, "db.pool", "Query {=update_job|insert_event} failed: {=deadlock detected|lock wait timeout exceeded|duplicate key value violates unique constraint}"),
    T(6, SG_WARN, "cluster", "Node {h} missed {n} heartbeats"),
    T(6, SG_WARN, "api.v2", "Client {i} throttled: {n} requests over limit"),
    T(6, SG_INFO, "storage", "Snapshot {j} written ({b} bytes) in {D} ms"),
    TV(6, SG_ERROR, "auth", "Token validation failed for {x}: {=token expired|signature mismatch|unknown issuer}", 0, 2),
    T(5, SG_INFO, "auth", "Permissions for role {=viewer|editor|admin|auditor} reloaded ({n} rules)"),
    TS(5, SG_ERROR, "jobs.scheduler", "Job {j} failed after {D} ms: {=timeout|out of memory|invalid input}"),
    T(4, SG_WARN, "search", "Query \"{w}\" hit the result limit of {N}"),
    TVS(3, SG_ERROR, "http.server", "Unhandled exception in handler {=/api/v2/reports|/api/v2/documents/export} (request {u})", 2, 99),
    T(3, SG_INFO, "cluster", "Leader election: {h} elected for term {N}"),
    T(3, SG_WARN, "mail", "SMTP server {h} deferred message {x}: {=451 4.7.1 try again later|421 too many connections}"),
    T(2, SG_INFO, "http.server", "TLS certificate for {h} expires in {n} days"),
    T(2, SG_INFO, "config", "Configuration reloaded: {n} keys changed"),
    TS(2, SG_ERROR, "storage", "Write of blob {x} failed: {=No space left on device|Input/output error|Permission denied}"),
};

static const sg_tpl_def beacon_shutdown[] = {
    T(100, SG_INFO, "http.server", "Stopped accepting connections, draining {n} requests"),
    T(100, SG_INFO, "app.main", "Shutdown complete after {E} s"),
};

static const sg_tpl_def beacon_crash[] = {
    TS(60, SG_FATAL, "app.main", "Out of memory allocating {b} bytes"),
    T(40, SG_FATAL, "db.pool", "Database {h} unreachable for {s} s, giving up"),
};

static const char *const beacon_frames[] = {
    "com.beacon.http.Router.dispatch(Router.java:",
    "com.beacon.http.Handler.handle(Handler.java:",
    "com.beacon.api.v2.DocumentsResource.export(DocumentsResource.java:",
    "com.beacon.api.v2.ReportsResource.render(ReportsResource.java:",
    "com.beacon.db.Pool.query(Pool.java:",
    "com.beacon.db.Pool.acquire(Pool.java:",
    "com.beacon.jobs.Worker.run(Worker.java:",
    "com.beacon.storage.BlobStore.write(BlobStore.java:",
    "com.beacon.auth.TokenVerifier.verify(TokenVerifier.java:",
    "org.mariadb.jdbc.ClientPreparedStatement.executeInternal(ClientPreparedStatement.java:",
    "org.mariadb.jdbc.message.ClientMessage.readPacket(ClientMessage.java:",
    "java.base/java.nio.channels.FileChannel.write(FileChannel.java:",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:",
    "java.base/java.lang.Thread.run(Thread.java:",
};
static const char *const beacon_threads[] = {"http-worker-1", "http-worker-2", "http-worker-3",
                                             "http-worker-4", "db-pool", "scheduler", "main"};
static const char *const beacon_exts[] = {".json", ".bin", ".pdf", ".docx"};

/* ---- Cobalt CLI: a command-line sync tool (classic format, native stack traces) ---- */
static const sg_tpl_def cobalt_startup[] = {
    T(100, SG_INFO, "cli.main", "{A} {v} (build {B}) starting"),
    T(100, SG_INFO, "cli.main", "OS: {o}, {C} CPUs, {R} MiB RAM"),
    T(100, SG_INFO, "cli.main", "Locale {l}, time zone {z}"),
    T(100, SG_INFO, "cli.main", "Licence {L} ({T}) valid until {g}"),
    T(100, SG_INFO, "cli.main", "Machine id {m}, user id {U}, site {S}"),
    T(100, SG_INFO, "cli.main", "Process {P} started in {W}"),
    T(100, SG_INFO, "cli.main", "Command line: cobalt {=sync|push|pull|status|verify|gc} {=--all|--verbose|--dry-run|--jobs 4|--since yesterday}"),
    T(100, SG_INFO, "config", "Config read from {W}"),
};

static const sg_tpl_def cobalt_body[] = {
    T(3000, SG_DEBUG, "fs.watch", "Scanning {p}"),
    T(1500, SG_DEBUG, "index", "Index lookup {x} -> {=hit|miss}"),
    T(800, SG_INFO, "sync.remote", "Uploaded {p} ({b} bytes) in {d} ms"),
    T(800, SG_DEBUG, "net.http", "Response {=200|201|204|304|404} for {x} in {d} ms ({b} bytes)"),
    T(600, SG_INFO, "sync.remote", "Downloaded {p} ({b} bytes) in {d} ms"),
    T(600, SG_DEBUG, "sync.local", "Hashing {p} ({b} bytes) took {d} ms"),
    T(500, SG_INFO, "crypto", "Encrypted chunk {x} ({b} bytes) in {d} ms"),
    T(400, SG_INFO, "sync.remote", "Chunk {x} deduplicated ({b} bytes saved)"),
    T(300, SG_INFO, "fs.watch", "Change detected in {p} ({=modified|created|deleted|renamed})"),
    T(300, SG_INFO, "cli.main", "Progress: {y}% of {N} files"),
    T(200, SG_DEBUG, "fs.watch", "Watch descriptor {n} added for {p}"),
    T(150, SG_DEBUG, "fs.watch", "Debounced {n} events for {p}"),
    T(100, SG_INFO, "sync.local", "Deleted {p}"),
    T(100, SG_INFO, "net.http", "Throughput {k} KiB/s over last {s} s"),
    T(100, SG_DEBUG, "crypto", "Nonce counter at {N} for key {i}"),
    T(60, SG_INFO, "sync.local", "Renamed {p} -> {p}"),
    T(50, SG_WARN, "sync.local", "Skipping {p}: {=file in use|permission denied|path too long|symbolic link loop}"),
    T(40, SG_INFO, "net.http", "Connected to {h}:{r} in {d} ms (TLS {=1.3|1.2})"),
    T(40, SG_WARN, "net.http", "Retrying {=PUT|GET|POST} https://{h}/v1/{=chunks|objects|manifest}/{x} after {d} ms (attempt {n})"),
    T(40, SG_INFO, "sync.local", "Snapshot of {p} taken in {d} ms"),
    T(30, SG_INFO, "sync.local", "Excluded {n} files by pattern \"{=*.tmp|~$*|.DS_Store|node_modules/}\""),
    T(20, SG_INFO, "index", "Index loaded: {N} entries, {b} bytes in {d} ms"),
    T(20, SG_INFO, "index", "Index saved: {N} entries in {d} ms"),
    T(20, SG_INFO, "sync.remote", "Manifest {u} committed with {N} chunks"),
    T(20, SG_INFO, "sync.remote", "Conflict on {p} resolved as {=keep-both|keep-local|keep-remote}"),
    T(10, SG_INFO, "sync.remote", "Remote {h} has {N} objects ({b} bytes)"),
    T(10, SG_INFO, "sync.remote", "Resumed upload of {p} at offset {N}"),
    T(10, SG_INFO, "cli.main", "Lock {p} acquired after {d} ms"),
    T(10, SG_DEBUG, "crypto", "Key {i} derived in {d} ms"),
    TS(10, SG_ERROR, "sync.remote", "Upload of {p} failed: {=connection reset by peer|HTTP 500|checksum mismatch|quota exceeded}"),
    TV(10, SG_INFO, "verify", "Verified {N} chunks, {n} mismatches", 3, 99),
    TS(6, SG_ERROR, "sync.local", "Cannot read {p}: {=Permission denied|Input/output error|Stale file handle}"),
    T(5, SG_INFO, "cli.main", "Bandwidth limited to {k} KiB/s"),
    T(5, SG_ERROR, "net.http", "Request to {h} timed out after {D} ms"),
    T(5, SG_WARN, "sync.remote", "Remote {h} reports {y}% quota used"),
    TV(5, SG_INFO, "gc", "Garbage collection removed {N} chunks ({b} bytes) in {D} ms", 1, 99),
    TV(5, SG_INFO, "sync.remote", "Parallel transfers set to {n}", 2, 99),
    T(3, SG_INFO, "cli.main", "Proxy {h}:{r} in use"),
    T(3, SG_INFO, "index", "Compacted index from {N} to {N} entries"),
    T(3, SG_WARN, "cli.main", "Previous run did not finish cleanly, resuming from checkpoint {j}"),
    T(2, SG_WARN, "fs.watch", "Too many watches ({N}), falling back to polling every {s} s"),
    T(2, SG_WARN, "config", "Unknown option \"{w}\" in {p} ignored"),
    TV(2, SG_WARN, "gc", "Garbage collection skipped: lock held by {h} pid {n}", 1, 99),
    TVS(2, SG_ERROR, "verify", "Chunk {x} failed verification: expected {x}, got {x}", 3, 99),
    TS(2, SG_ERROR, "crypto", "Decryption failed for chunk {x}: authentication tag mismatch"),
    TV(2, SG_ERROR, "index", "Index corrupt at entry {N}, rebuilding", 0, 2),
    T(2, SG_INFO, "index", "Index rebuilt: {N} entries in {D} ms"),
    T(1, SG_WARN, "net.http", "Certificate for {h} expires in {n} days"),
};

static const sg_tpl_def cobalt_shutdown[] = {
    T(100, SG_INFO, "cli.main", "Summary: {N} files checked, {n} transferred, {b} bytes in {D} ms"),
    T(100, SG_INFO, "cli.main", "Shutdown complete after {E} s"),
};

static const sg_tpl_def cobalt_crash[] = {
    TS(65, SG_FATAL, "cli.main", "Segmentation fault (signal 11) at address {x}"),
    T(35, SG_FATAL, "cli.main", "Assertion failed: {=offset <= length|!path.empty()|index.size() == count} in {=chunk.cpp|path.cpp|index.cpp}:{n}"),
};

static const char *const cobalt_frames[] = {
    "cobalt::sync::Uploader::push(cobalt::Chunk const&) at src/sync/uploader.cpp:",
    "cobalt::sync::Uploader::run() at src/sync/uploader.cpp:",
    "cobalt::sync::Scanner::walk(std::filesystem::path const&) at src/sync/scanner.cpp:",
    "cobalt::index::Index::lookup(cobalt::Digest const&) at src/index/index.cpp:",
    "cobalt::index::Index::load(std::string const&) at src/index/index.cpp:",
    "cobalt::net::HttpClient::send(cobalt::net::Request&) at src/net/http_client.cpp:",
    "cobalt::crypto::Box::open(std::span<unsigned char const>) at src/crypto/box.cpp:",
    "cobalt::chunk::Chunker::next() at src/chunk/chunker.cpp:",
    "cobalt::verify::Verifier::check(cobalt::Manifest const&) at src/verify/verifier.cpp:",
    "cobalt::cli::Command::execute(int, char**) at src/cli/command.cpp:",
    "main at src/cli/main.cpp:",
    "std::thread::_State_impl<...>::_M_run() at /usr/include/c++/12/bits/std_thread.h:",
};
static const char *const cobalt_threads[] = {"main", "uploader-1", "uploader-2", "scanner", "index"};
static const char *const cobalt_exts[] = {".docx", ".xlsx", ".pdf", ".jpg", ".txt", ".csv", ".zip"};

static const sg_product_def sg_products[] = {
    {"Atlas Studio", "atlas-studio", SG_FMT_CLASSIC, SG_KIND_DESKTOP, 4,
     {"4.1.3", "4.2.0", "4.2.1", "4.3.0"},
     {"4.1.3.20260611-7c2e01", "4.2.0.20260902-a3f9c1", "4.2.1.20261015-5b8d42", "4.3.0.20261101-e01f9a"},
     {-1.0, 0.18, 0.42, 0.70}, {0.04, 0.05, 0.03, 0.06}, 0.75,
     48 * 1024.0, 1.0, 0.04, 512 * 1024.0, 1.05, 45 * 60.0, 0.9,
     atlas_startup, SG_COUNT(atlas_startup), atlas_body, SG_COUNT(atlas_body),
     atlas_shutdown, SG_COUNT(atlas_shutdown), atlas_crash, SG_COUNT(atlas_crash),
     SG_STACK_JAVA, atlas_frames, SG_COUNT(atlas_frames), atlas_threads, SG_COUNT(atlas_threads),
     atlas_exts, SG_COUNT(atlas_exts)},
    {"Beacon Server", "beacon-server", SG_FMT_JSONL, SG_KIND_SERVER, 3,
     {"2.8.4", "2.9.0", "3.0.0"},
     {"2.8.4+b1187", "2.9.0+b1240", "3.0.0+b1302"},
     {-1.0, 0.30, 0.62}, {0.03, 0.02, 0.05}, 0.12,
     192 * 1024.0, 1.1, 0.06, 2048 * 1024.0, 1.0, 6 * 3600.0, 1.0,
     beacon_startup, SG_COUNT(beacon_startup), beacon_body, SG_COUNT(beacon_body),
     beacon_shutdown, SG_COUNT(beacon_shutdown), beacon_crash, SG_COUNT(beacon_crash),
     SG_STACK_JAVA, beacon_frames, SG_COUNT(beacon_frames), beacon_threads, SG_COUNT(beacon_threads),
     beacon_exts, SG_COUNT(beacon_exts)},
    {"Cobalt CLI", "cobalt-cli", SG_FMT_CLASSIC, SG_KIND_CLI, 4,
     {"1.14.2", "1.15.0", "1.15.1", "1.16.0"},
     {"1.14.2-g41c9a0e", "1.15.0-g9d03b7f", "1.15.1-g2e6f118", "1.16.0-gb7a4c2d"},
     {-1.0, 0.12, 0.38, 0.66}, {0.02, 0.03, 0.02, 0.02}, 0.4,
     8 * 1024.0, 1.0, 0.03, 256 * 1024.0, 1.1, 40.0, 1.2,
     cobalt_startup, SG_COUNT(cobalt_startup), cobalt_body, SG_COUNT(cobalt_body),
     cobalt_shutdown, SG_COUNT(cobalt_shutdown), cobalt_crash, SG_COUNT(cobalt_crash),
     SG_STACK_NATIVE, cobalt_frames, SG_COUNT(cobalt_frames), cobalt_threads, SG_COUNT(cobalt_threads),
     cobalt_exts, SG_COUNT(cobalt_exts)},
};
#define SG_NPRODUCTS SG_COUNT(sg_products)

/* ---- Names ---- */
static const char *const sg_site_names[] = {"acme", "borealis", "cygnus", "dorado", "eridani",
                                            "fornax", "gemini", "hydra", "indus", "lyra",
                                            "mensa", "norma", "orion", "pavo", "sextans", "vela"};
static const char *const sg_site_tz[] = {"Europe/Berlin", "America/New_York", "Asia/Tokyo",
                                         "Europe/London", "America/Sao_Paulo", "Europe/Paris",
                                         "Australia/Sydney", "America/Chicago"};
static const int sg_site_tz_offset_min[] = {60, -300, 540, 0, -180, 60, 660, -360};
static const char *const sg_site_locale[] = {"de_DE", "en_US", "ja_JP", "en_GB", "pt_BR", "fr_FR",
                                             "en_AU", "en_US"};
static const char *const sg_licence_types[] = {"subscription", "floating", "node-locked",
                                               "trial"};

static const char *const sg_os_desktop[] = {
    "Windows 11 Pro 23H2 (10.0.22631) x64", "Windows 10 Enterprise 22H2 (10.0.19045) x64",
    "Windows 11 Enterprise 24H2 (10.0.26100) x64", "macOS 14.6.1 (23G93) arm64",
    "Ubuntu 22.04.4 LTS x86_64", "macOS 15.1 (24B83) arm64",
};
static const char *const sg_os_server[] = {
    "Debian GNU/Linux 12 (bookworm) x86_64", "Red Hat Enterprise Linux 9.4 x86_64",
    "Windows Server 2022 Standard (10.0.20348) x64", "Ubuntu 24.04.1 LTS x86_64",
};

static const char *const sg_words[] = {
    "foundation", "electrical", "annotations", "roof", "survey", "north-wing", "draft-7",
    "plumbing", "kbauer", "mlopez", "tnguyen", "asato", "jsmith", "level-2", "façade",
    "Straße", "hvac", "landscape", "elevations", "details", "titleblock", "grid", "furniture",
    "設計", "revision-c", "site-plan", "structure", "lighting", "review", "markup",
};
static const char *const sg_stems[] = {
    "site-plan", "Floor Plan L2", "report_2026_q3", "invoice-4471", "facade_rev_c", "budget",
    "meeting notes", "logo-final-v3", "survey_points", "bracket_assembly", "Angebot_Müller",
    "schedule", "drawing-0042", "export", "backup", "photo_0193", "specs", "contract-draft",
};
static const char *const sg_dirs_win[] = {
    "C:\\Users\\%U\\Documents\\Projects\\Harbour Centre", "C:\\Users\\%U\\Desktop",
    "\\\\fileserver\\projects\\2026\\North Wing", "D:\\Work\\Archive", "C:\\Users\\%U\\Downloads",
};
static const char *const sg_dirs_unix[] = {
    "/home/%U/projects/harbour-centre", "/home/%U/Documents", "/srv/share/projects/2026/north wing",
    "/home/%U/Downloads", "/mnt/archive/2025",
};
static const char *const sg_dirs_mac[] = {
    "/Users/%U/Documents/Projects/Harbour Centre", "/Users/%U/Desktop",
    "/Volumes/projects/2026/North Wing", "/Users/%U/Downloads",
};
static const char *const sg_dirs_server[] = {
    "/var/lib/beacon/blobs", "/var/lib/beacon/exports", "/etc/beacon", "/srv/beacon/tenants",
};
static const char *const sg_dirs_server_win[] = {
    "D:\\Beacon\\blobs", "D:\\Beacon\\exports", "C:\\ProgramData\\Beacon", "D:\\Beacon\\tenants",
};
static const char *const sg_remote_hosts[] = {
    "lic01.corp.example", "sync.atlas-cloud.example", "db-primary.internal", "db-replica-2.internal",
    "smtp.example.net", "api.cobalt-storage.example", "beacon-node-2.internal", "proxy.corp.example",
    "files.partner.example", "beacon-node-3.internal",
};

#undef T
#undef TS
#undef TV
#undef TVS

#endif
