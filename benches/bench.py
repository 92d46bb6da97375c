"""ptex's benchmark: medians and ratios against curl and friends, peak RSS, binary size.

Serves generated files from real servers on free loopback ports (nginx with sendfile, s3s-fs,
gcp-storage-emulator, pyftpdlib; only those the chosen cases need), runs each command of a
case alternately BENCH_RUNS times and prints one markdown table per case. Every server runs
in its own process group and is killed, and the temp dir removed, however the run ends.

Environment:
  BENCH_MB       size of the large file in MiB (default 1024)
  BENCH_SLOW_MB  size for the Python servers (gs, ftp) in the RSS table (default 256)
  BENCH_RUNS     runs per command (default 5)
  BENCH_SCIE_MB  size of the large scie in the scie-tail case (default 300)
  BENCH_CASES    comma list of cases to run (default all): verified, startup, rate-limited,
                 ranged-s3, rss, scie-tail, fleet (see CASES)
  BENCH_FLEET    hosts in the fleet case (default 32)
  BENCH_PTEX     the ptex binary to measure (default target/release/ptex, which benches/run
                 builds)
  BENCH_ALSO     comma list of other ptex binaries to run beside it in the `verified` case,
                 e.g. dist/ptex-linux-x86_64 (the static build: its allocator against glibc's)
  BENCH_ORIGINAL_PTEX  the original ptex (a-scie/ptex 1.7.0) to compare with in the `startup`
                 case, over http and https (left out when unset)
  BENCH_STARTUP_RUNS   runs per command in the `startup` case (default 20: each takes a few ms)
ptex runs with its defaults: PTEX_*, AWS_*, proxy and config-location variables of the
caller are not passed on, and HOME is a fresh temp dir.
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PTEX = os.environ.get("BENCH_PTEX") or os.path.join(ROOT, "target", "release", "ptex")
VENV_BIN = os.path.join(ROOT, "target", "test-venv", "bin")
MB = int(os.environ.get("BENCH_MB", "1024"))
SLOW_MB = int(os.environ.get("BENCH_SLOW_MB", "256"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SCIE_MB = int(os.environ.get("BENCH_SCIE_MB", "300"))
FLEET = int(os.environ.get("BENCH_FLEET", "32"))
ORIGINAL_PTEX_BYTES = 6_377_624
ORIGINAL_PTEX = os.environ.get("BENCH_ORIGINAL_PTEX", "")
STARTUP_RUNS = int(os.environ.get("BENCH_STARTUP_RUNS", "20"))
# Where a system keeps its CA bundle (the paths the original's OpenSSL probes, in order).
SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                  "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"]
# The memory target of issue 6: a 1 GiB file, any scheme, in at most this much peak RSS.
RSS_TARGET_KIB = 16 * 1024
READY_TIMEOUT = 20  # seconds for a server to accept connections

# S3 credentials s3s-fs checks signatures against (as in tests/it/support/s3.rs).
S3_ACCESS_KEY = "ptex-bench-access-key"
S3_SECRET_KEY = "ptex-bench-secret-key"
BUCKET = "bkt"

FTP_SERVER = """
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

root, port = sys.argv[1], int(sys.argv[2])
authorizer = DummyAuthorizer()
authorizer.add_anonymous(root, perm="elr")
FTPHandler.authorizer = authorizer
FTPServer(("127.0.0.1", port), FTPHandler).serve_forever()
"""


class BenchError(Exception):
    """A command or server that failed; the message says which and why."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.25).close()
        return True
    except OSError:
        return False


def make_file(path, size):
    """Incompressible bytes, written in 1 MiB blocks; returns the sha256 and the md5."""
    digest, md5 = hashlib.sha256(), hashlib.md5()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            f.write(piece)
            digest.update(piece)
            md5.update(piece)
            left -= len(piece)
    return digest.hexdigest(), md5.hexdigest()


def mib(nbytes):
    return f"{nbytes / (1 << 20):g} MiB" if nbytes >= 1 << 20 else f"{nbytes} bytes"


class Bench:
    """The temp dir, the generated files and the servers; close() undoes all of it."""

    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="ptex-bench-")
        # nginx's workers run as an unprivileged user: they must be able to read the files.
        os.chmod(self.work, 0o755)
        self.www = self.dir("www")
        self.s3_root = self.dir("s3")
        self.ftp_root = self.dir("ftp")
        self.files = {}  # size -> (name, sha256)
        self.md5 = {}  # name -> md5
        self.procs = []  # (name, Popen, log path)
        self.ports = {}  # server -> port
        self.gcs_objects = set()
        home = self.dir("home")
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PTEX_", "AWS_", "GOOGLE_", "XDG_CONFIG"))
            and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy")
            and k not in ("STORAGE_EMULATOR_HOST", "CURL_HOME")
        }
        self.env.update(HOME=home, PTEX_CACHE_DIR=self.dir("cache"))

    def dir(self, name):
        path = os.path.join(self.work, name)
        os.makedirs(path, mode=0o755)
        return path

    def close(self):
        for _, proc, _ in reversed(self.procs):
            stop(proc)
        shutil.rmtree(self.work, ignore_errors=True)

    def file(self, size):
        """A generated file of `size` bytes under www/ (made once): its name and sha256."""
        if size not in self.files:
            name = f"data-{size}.bin"
            sha, self.md5[name] = make_file(os.path.join(self.www, name), size)
            self.files[size] = (name, sha)
        return self.files[size]

    def start(self, name, argv, port):
        """Starts a server in its own process group, logging to work/NAME.log; waits until
        it accepts connections on `port`."""
        log = os.path.join(self.work, f"{name}.log")
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append((name, proc, log))
        deadline = time.monotonic() + READY_TIMEOUT
        while not accepts(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                state = f"exited ({proc.returncode})" if proc.poll() is not None else f"not ready in {READY_TIMEOUT} s"
                with open(log, errors="replace") as f:
                    raise BenchError(f"{name} {state}; its output:\n{f.read()}")
            time.sleep(0.05)
        self.ports[name] = port

    # Each server method starts its server on first use and returns its port.

    def nginx(self):
        if "nginx" in self.ports:
            return self.ports["nginx"]
        if not shutil.which("nginx"):
            raise BenchError("nginx is missing (benches/run installs it)")
        port, tls_port, root = free_port(), free_port(), self.work
        cert, key = self.certificate()
        conf = os.path.join(root, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    log_format sent '$body_bytes_sent';
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {self.www};
        location /limited/ {{ alias {self.www}/; limit_rate 20m; }}
        location /origin/ {{ alias {self.www}/; access_log {root}/origin.log sent; }}
        location /cas/ {{
            alias {root}/http-cas/;
            dav_methods PUT DELETE;
            create_full_put_path on;
            client_max_body_size 0;
        }}
    }}
}}
""")
        # nginx's workers (nobody, when started as root) write PUT bodies to both.
        for writable in ("tmp", "http-cas"):
            os.makedirs(os.path.join(root, writable), exist_ok=True)
            os.chmod(os.path.join(root, writable), 0o777)
        self.start("nginx", ["nginx", "-c", conf, "-p", root], port)
        self.ports["nginx-tls"] = tls_port
        return port

    def nginx_tls(self):
        """The port of nginx's https listener (the same files, a self-signed certificate
        for 127.0.0.1 from certificate())."""
        self.nginx()
        return self.ports["nginx-tls"]

    def certificate(self):
        """A self-signed P-256 certificate for 127.0.0.1 and its key, made once: cert.pem,
        key.pem, and bundle.pem (the system's CA bundle followed by cert.pem)."""
        cert, key = os.path.join(self.work, "cert.pem"), os.path.join(self.work, "key.pem")
        if not os.path.exists(cert):
            made = subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
            if made.returncode != 0:
                raise BenchError(f"openssl req: {made.stderr.strip()}")
            system = next((b for b in SYSTEM_BUNDLES if os.path.exists(b)), None)
            with open(os.path.join(self.work, "bundle.pem"), "w") as out:
                for path in filter(None, [system, cert]):
                    with open(path) as f:
                        out.write(f.read())
        return cert, key

    def s3(self):
        """s3s-fs serving work/s3 (a directory per bucket)."""
        if "s3" not in self.ports:
            if not shutil.which("s3s-fs"):
                raise BenchError("s3s-fs is missing (scripts/test-servers installs it)")
            os.makedirs(os.path.join(self.s3_root, BUCKET), exist_ok=True)
            port = free_port()
            self.start("s3", ["s3s-fs", "--host", "127.0.0.1", "--port", str(port),
                              "--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY,
                              self.s3_root], port)
        return self.ports["s3"]

    # The *_file and *_object methods: a URL for `size` generated bytes, their sha256 and the
    # environment ptex needs for that URL.

    def http_file(self, size):
        name, sha = self.file(size)
        return f"http://127.0.0.1:{self.nginx()}/{name}", sha, {}

    def local_file(self, size):
        name, sha = self.file(size)
        return f"file://{self.www}/{name}", sha, {}

    def s3_object(self, size):
        """In s3s-fs, which serves work/s3/BUCKET/KEY (a hard link to the file in www/)."""
        port = self.s3()
        name, sha = self.file(size)
        link(os.path.join(self.www, name), os.path.join(self.s3_root, BUCKET, name))
        # The ETag record a PutObject would have left. Without it s3s-fs 0.14.1 reads the
        # whole file for an MD5 on every GET and HEAD, ranged or not, which would make each
        # part cost a full read of the object.
        b64 = lambda text: base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
        info = os.path.join(self.s3_root, f".bucket-{b64(BUCKET)}.object-{b64(name)}.internal.json")
        with open(info, "w") as f:
            json.dump({"e_tag": self.md5[name]}, f)
        env = dict(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_REGION="us-east-1",
            AWS_ACCESS_KEY_ID=S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET_KEY,
            AWS_EC2_METADATA_DISABLED="true",
        )
        return f"s3://{BUCKET}/{name}", sha, env

    def gcs_object(self, size):
        """In gcp-storage-emulator, which keeps objects in memory: uploaded with its JSON API
        as tests/it/support/gcs.rs does."""
        if "gcs" not in self.ports:
            port = free_port()
            self.start("gcs", [venv_bin("gcp-storage-emulator"), "start", "--host", "127.0.0.1",
                               "--port", str(port), "--in-memory"], port)
            gcs_post(port, "/storage/v1/b", "application/json", f'{{"name":"{BUCKET}"}}'.encode())
        port = self.ports["gcs"]
        name, sha = self.file(size)
        if name not in self.gcs_objects:
            with open(os.path.join(self.www, name), "rb") as body:
                gcs_post(port, f"/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={name}",
                         "application/octet-stream", body, size)
            self.gcs_objects.add(name)
        return f"gs://{BUCKET}/{name}", sha, dict(STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{port}")

    def ftp_file(self, size):
        """Served read-only to anonymous by pyftpdlib (a hard link to the file in www/)."""
        if "ftp" not in self.ports:
            port = free_port()
            self.start("ftp", [venv_bin("python"), "-c", FTP_SERVER, self.ftp_root, str(port)], port)
        name, sha = self.file(size)
        link(os.path.join(self.www, name), os.path.join(self.ftp_root, name))
        return f"ftp://127.0.0.1:{self.ports['ftp']}/{name}", sha, {}


def stop(proc):
    """Ends the process group `proc` leads (it was started with start_new_session)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def link(source, target):
    if not os.path.exists(target):
        os.link(source, target)


def venv_bin(name):
    path = os.path.join(VENV_BIN, name)
    if not os.path.exists(path):
        raise BenchError(f"{path} is missing (scripts/test-servers creates the venv)")
    return path


def gcs_post(port, target, content_type, body, length=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        headers = {"Content-Type": content_type, "Content-Length": str(len(body) if length is None else length)}
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read()[:500].decode(errors="replace")
    except OSError as e:
        raise BenchError(f"gcp-storage-emulator: POST {target}: {e}") from e
    finally:
        connection.close()
    if response.status not in (200, 409):  # 409: the bucket exists already
        raise BenchError(f"gcp-storage-emulator: POST {target}: {response.status} {text}")


def timed(command, env):
    """Wall time and peak RSS (KiB, of the largest process measured by GNU time)."""
    wrapped = ["/usr/bin/time", "-f", "%M", "sh", "-c", command]
    start = time.perf_counter()
    # Its own process group, so that an interrupted run leaves no ptex or curl behind.
    proc = subprocess.Popen(wrapped, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate()
    except BaseException:
        stop(proc)
        raise
    wall = time.perf_counter() - start
    lines = stderr.strip().splitlines()
    if proc.returncode != 0:
        # GNU time's own "Command exited with non-zero status" and %M lines end stderr.
        said = [l for l in lines[:-1] if not l.startswith("Command exited")]
        raise BenchError(f"`{command}` failed (exit {proc.returncode}): {' / '.join(said[-3:]) or 'no output'}")
    return wall, int(lines[-1])


def seconds(wall):
    return f"{wall * 1000:.1f} ms" if wall < 0.1 else f"{wall:.3f} s"


def case(title, commands, env, baseline, runs=RUNS):
    """commands: (name, shell command[, extra env]); runs them alternately `runs` times.
    The peak RSS column is the largest of the runs, with the smallest beside it when they
    differ by more than 1 MiB (a run that split into parts holds more buffers)."""
    results = {c[0]: [] for c in commands}
    rss = {c[0]: [] for c in commands}
    for _ in range(runs):
        for name, command, *extra in commands:
            wall, peak = timed(command, dict(env, **(extra[0] if extra else {})))
            results[name].append(wall)
            rss[name].append(peak)
    medians = {name: statistics.median(walls) for name, walls in results.items()}
    base = medians[baseline]
    print(f"\n### {title} ({runs} runs each, alternating)\n")
    print("| command | median wall time | ratio to baseline | peak RSS |")
    print("|---|---|---|---|")
    for name, *_ in commands:
        median = medians[name]
        cell = name.replace("|", "\\|")
        low, high = min(rss[name]) / 1024, max(rss[name]) / 1024
        peak = f"{high:.1f} MiB" if high - low <= 1 else f"{low:.1f}–{high:.1f} MiB"
        print(f"| {cell} | {seconds(median)} | {median / base:.2f} x | {peak} |", flush=True)
    return medians


def lift(bench, url, name, sha, nbytes):
    """A lift manifest with one file, fetched from `url`."""
    path = os.path.join(bench.work, f"{name}.{url.split(':')[0]}.json")
    with open(path, "w") as f:
        json.dump({"scie": {"lift": {"files": [{"name": name, "size": nbytes, "hash": sha}]}},
                   "ptex": {name: url}}, f)
    return path


def fetch(url, sha, size):
    return f"{PTEX} -s --sha256 {sha} --size {size} '{url}' > /dev/null"


def run_verified(bench):
    port = bench.nginx()
    size = MB << 20
    name, sha = bench.file(size)
    url = f"http://127.0.0.1:{port}/{name}"
    manifest = lift(bench, url, name, sha, size)
    ptex = "ptex lift.json big.bin > /dev/null (verified)"
    receive = "curl -s -o /dev/null (no verification)"
    digest = "openssl dgst -sha256 FILE (page cache, no network)"
    also = {
        f"{other} lift.json big.bin > /dev/null (verified)": os.path.join(ROOT, other)
        for other in filter(None, os.environ.get("BENCH_ALSO", "").split(","))
    }
    medians = case(
        f"{MB} MiB, verified, to /dev/null",
        [
            (receive, f"curl -s -o /dev/null {url}"),
            # The hash alone: no verifier here can be faster than this.
            (digest, hash_only(bench, name)),
            (
                # ptex must keep the bytes somewhere until they verify: this is what writing
                # them to a file (and removing it) costs on this machine.
                "curl -s -o FILE; rm FILE (no verification)",
                f"curl -s -o {bench.work}/curl.out {url} && rm -f {bench.work}/curl.out",
            ),
            (ptex, f"{PTEX} -s {manifest} {name} > /dev/null"),
            *[(row, f"{other} -s {manifest} {name} > /dev/null") for row, other in also.items()],
            ("curl -s URL | openssl dgst -sha256", f"curl -s {url} | openssl dgst -sha256"),
            ("curl -s URL | sha256sum", f"curl -s {url} | sha256sum"),
        ],
        bench.env,
        receive,
    )
    against_limit(medians, [ptex, *also], receive, digest)


def hash_only(bench, name):
    """The command that hashes file `name` of www/ from the page cache (warmed here): no
    verifier on this machine can be faster than it."""
    path = os.path.join(bench.www, name)
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
    return f"openssl dgst -sha256 {path}"


def against_limit(medians, rows, receive, digest):
    """Prints each of `rows` against the limit of a verifying fetch: the slower of receiving
    the bytes (`receive`) and hashing them (`digest`)."""
    limit = max(medians[receive], medians[digest])
    print(f"\nagainst the limit max(receiving, openssl dgst -sha256) = {seconds(limit)}:")
    for row in rows:
        print(f"- {row}: {medians[row] / limit:.2f} x ({seconds(medians[row])})", flush=True)


def run_startup(bench):
    """200 bytes over http and https: curl, ptex, and the original ptex when
    BENCH_ORIGINAL_PTEX names it. Each trusts the system's roots and the test certificate:
    ptex adds SSL_CERT_FILE to the system's roots; curl (--cacert) and the original (its
    OpenSSL reads SSL_CERT_FILE instead of the system bundle) get the system bundle with the
    certificate appended."""
    name, sha = bench.file(200)
    http = f"http://127.0.0.1:{bench.nginx()}/{name}"
    https = f"https://127.0.0.1:{bench.nginx_tls()}/{name}"
    cert, _ = bench.certificate()
    bundle = os.path.join(bench.work, "bundle.pem")
    original = ORIGINAL_PTEX and os.path.abspath(ORIGINAL_PTEX)
    if original and not os.access(original, os.X_OK):
        raise BenchError(f"BENCH_ORIGINAL_PTEX={ORIGINAL_PTEX}: not an executable file")
    commands = []
    for scheme, url in (("http", http), ("https", https)):
        manifest = lift(bench, url, name, sha, 200)
        commands += [
            (f"curl -s -o /dev/null {scheme}://", f"curl -s --cacert {bundle} -o /dev/null {url}"),
            (f"ptex lift.json small.bin, {scheme}://",
             f"{PTEX} -s {manifest} {name} > /dev/null", {"SSL_CERT_FILE": cert}),
        ]
        if original:
            commands.append((f"original ptex lift.json small.bin, {scheme}://",
                             f"{original} -s {manifest} {name} > /dev/null",
                             {"SSL_CERT_FILE": bundle}))
    baseline = "curl -s -o /dev/null http://"
    medians = case("200 bytes, verified (startup cost)", commands, bench.env, baseline,
                   runs=STARTUP_RUNS)
    ours = {s: medians[f"ptex lift.json small.bin, {s}://"] for s in ("http", "https")}
    print(f"\nptex https against http: {ours['https'] / ours['http']:.2f} x "
          f"({seconds(ours['https'])} against {seconds(ours['http'])})", flush=True)
    if not original:
        print("\n(set BENCH_ORIGINAL_PTEX=/path/to/ptex to compare with the original ptex)")
        return
    for scheme in ("http", "https"):
        theirs = medians[f"original ptex lift.json small.bin, {scheme}://"]
        print(f"ptex against the original ptex, {scheme}://: {ours[scheme] / theirs:.2f} x "
              f"({seconds(ours[scheme])} against {seconds(theirs)})", flush=True)


def run_rate_limited(bench):
    port = bench.nginx()
    part = min(MB, 256)
    name, sha = bench.file(part << 20)
    limited = f"http://127.0.0.1:{port}/limited/{name}"
    case(
        f"{part} MiB from a server limiting each connection to 20 MB/s",
        [
            ("curl (one stream)", f"curl -s -o /dev/null {limited}"),
            (
                "aria2c -x8 -s8",
                f"cd {bench.work} && aria2c -q -x8 -s8 -k1M --allow-overwrite=true -o got.bin {limited}",
            ),
            ("ptex (verified)", f"{PTEX} -s --sha256 {sha} {limited} > /dev/null"),
        ],
        bench.env,
        "curl (one stream)",
    )


def run_ranged_s3(bench):
    part = min(MB, 256)
    size = part << 20
    url, sha, s3_env = bench.s3_object(size)
    name = url.rsplit("/", 1)[1]
    one = "ptex, one connection (PTEX_CONNECTIONS=1)"
    default = "ptex, default (parts if one connection is slower than 256 MiB/s)"
    at_once = "ptex, parts at once (PTEX_SPLIT_AFTER=0, up to 8 connections)"
    receive = "curl --aws-sigv4 -o /dev/null (one connection, no verification)"
    digest = "openssl dgst -sha256 FILE (page cache, no network)"
    # curl signs the request as ptex does; s3s-fs wants the payload hash header on a GET too.
    signed = (f"curl -s -o /dev/null --aws-sigv4 aws:amz:us-east-1:s3 "
              f"--user {S3_ACCESS_KEY}:{S3_SECRET_KEY} -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "
              f"{s3_env['AWS_ENDPOINT_URL']}/{BUCKET}/{name}")
    medians = case(
        f"{part} MiB from s3s-fs (SigV4, no rate limit), verified",
        [
            (receive, signed),
            (digest, hash_only(bench, name)),
            (one, fetch(url, sha, size), {"PTEX_CONNECTIONS": "1"}),
            (default, fetch(url, sha, size)),
            (at_once, fetch(url, sha, size), {"PTEX_SPLIT_AFTER": "0"}),
        ],
        dict(bench.env, **s3_env),
        one,
    )
    against_limit(medians, [one, default, at_once], receive, digest)


def run_rss(bench):
    """Each scheme once with ptex's defaults; returns whether every fetch succeeded."""
    big, slow = MB << 20, SLOW_MB << 20
    rows = [
        ("http (nginx)", big, bench.http_file),
        ("file", big, bench.local_file),
        ("s3 (s3s-fs)", big, bench.s3_object),
        ("gs (gcp-storage-emulator)", slow, bench.gcs_object),
        ("ftp (pyftpdlib)", slow, bench.ftp_file),
    ]
    print("\n### Peak RSS of ptex by scheme (one verified fetch each, default settings)\n")
    print(f"| scheme | size | wall time | peak RSS | at most {RSS_TARGET_KIB // 1024} MiB |")
    print("|---|---|---|---|---|")
    ok = True
    for scheme, size, setup in rows:
        try:
            url, sha, extra = setup(size)
            wall, peak = timed(fetch(url, sha, size), dict(bench.env, **extra))
            print(f"| {scheme} | {mib(size)} | {wall:.3f} s | {peak / 1024:.1f} MiB | "
                  f"{'yes' if peak <= RSS_TARGET_KIB else '**no**'} |", flush=True)
        except BenchError as e:
            ok = False
            print(f"| {scheme} | {mib(size)} | failed | | |", flush=True)
            print(f"bench: {scheme}: {e}", file=sys.stderr)
    return ok


def write_scie(path, size, lift_json):
    """A scie as scie-jump lays one out: `size` bytes of launcher and files, an empty zip
    (its end-of-central-directory record), then the lift manifest."""
    piece = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(piece[: min(left, len(piece))])
            left -= min(left, len(piece))
        f.write(b"PK\x05\x06" + bytes(16) + (0).to_bytes(2, "little"))
        f.write(json.dumps(lift_json).encode())


def run_scie_tail(bench):
    """A pex-style override file verified against the running scie: ptex reads the scie's
    embedded manifest from its tail only, so a large scie costs what a small one does."""
    name, sha = bench.file(200)
    url = f"file://{os.path.join(bench.www, name)}"
    lift_json = {
        "scie": {"lift": {"files": [{"name": name, "size": 200, "hash": sha, "source": "ptex-fetch"}]}},
        "ptex": {name: url},
    }
    big, small = os.path.join(bench.work, "big.scie"), os.path.join(bench.work, "small.scie")
    write_scie(big, SCIE_MB << 20, lift_json)
    write_scie(small, 1 << 20, lift_json)
    urls = os.path.join(bench.work, "urls.json")
    with open(urls, "w") as f:
        json.dump({"ptex": {name: url}}, f)
    manifest = os.path.join(bench.work, "lift.json")
    with open(manifest, "w") as f:
        json.dump(lift_json, f)
    run = f"{PTEX} -s {urls} {name} > /dev/null"
    case(
        "200 bytes through a URL-override file, size and sha256 from the running scie",
        [
            ("ptex lift.json (no scie read)", f"{PTEX} -s {manifest} {name} > /dev/null"),
            ("ptex urls.json, SCIE = a 1 MiB scie", run, {"SCIE": small}),
            (f"ptex urls.json, SCIE = a {SCIE_MB} MiB scie", run, {"SCIE": big}),
            (f"cat the {SCIE_MB} MiB scie > /dev/null (reading it whole)", f"cat {big} > /dev/null"),
        ],
        bench.env,
        "ptex lift.json (no scie read)",
    )
def origin_bytes(bench):
    """Body bytes nginx has sent from /origin/ so far (its access log, one number a line)."""
    try:
        with open(os.path.join(bench.work, "origin.log")) as f:
            return sum(int(line) for line in f if line.strip().isdigit())
    except FileNotFoundError:
        return 0


def run_fleet(bench):
    """FLEET hosts (own HOME and PTEX_CACHE_DIR) started together fetch one file from nginx's
    /origin/, with no cache, through a filling cache on s3s-fs with the lease, and without it,
    and through a filling HTTP cache on nginx's /cas/ (dav_methods PUT)."""
    part = min(MB, 64)
    size = part << 20
    name, sha = bench.file(size)
    url = f"http://127.0.0.1:{bench.nginx()}/origin/{name}"
    port = bench.s3()
    cas = os.path.join(bench.s3_root, "cas")
    config = os.path.join(bench.work, "fleet-config.json")
    with open(config, "w") as f:
        json.dump({"caches": [{"url": "s3://cas/sha256/{sha256}", "fill": True}]}, f)
    s3_env = dict(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID=S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET_KEY,
        AWS_EC2_METADATA_DISABLED="true",
    )
    http_config = os.path.join(bench.work, "fleet-http-config.json")
    with open(http_config, "w") as f:
        cache = f"http://127.0.0.1:{bench.nginx()}/cas/{{sha256}}"
        json.dump({"caches": [{"url": cache, "fill": True}]}, f)
    http_cas = os.path.join(bench.work, "http-cas")
    rows = [
        ("no cache", {}),
        ("filling cache on s3s-fs, with the lease", dict(s3_env, PTEX_CONFIG=config)),
        ("filling cache on s3s-fs, no lease (PTEX_CACHE_WAIT=0)",
         dict(s3_env, PTEX_CONFIG=config, PTEX_CACHE_WAIT="0")),
        # nginx's PUT ignores If-None-Match: *, so ptex takes no lease there (it checks).
        ("filling HTTP cache on nginx (PUT), no lease possible", dict(PTEX_CONFIG=http_config)),
    ]
    print(f"\n### A fleet of {FLEET} hosts fetching {mib(size)} at once from nginx (1 run each)\n")
    print("| setup | fleet wall time | origin bytes | whole files from the origin |")
    print("|---|---|---|---|")
    for title, extra in rows:
        for empty in (cas, http_cas):
            shutil.rmtree(empty, ignore_errors=True)
            os.makedirs(empty)
        os.chmod(http_cas, 0o777)
        before = origin_bytes(bench)
        procs = []
        start = time.perf_counter()
        for host in range(FLEET):
            home = os.path.join(bench.work, f"fleet-{host}")
            shutil.rmtree(home, ignore_errors=True)
            os.makedirs(home)
            env = dict(bench.env, HOME=home, PTEX_CACHE_DIR=os.path.join(home, "cache"), **extra)
            procs.append(subprocess.Popen(
                ["sh", "-c", fetch(url, sha, size)], env=env, stderr=subprocess.PIPE, text=True,
                start_new_session=True,
            ))
        failed = []
        for proc in procs:
            _, stderr = proc.communicate()
            if proc.returncode != 0:
                failed.append(stderr.strip().splitlines()[-1:] or ["no output"])
        wall = time.perf_counter() - start
        if failed:
            raise BenchError(f"fleet ({title}): {len(failed)} hosts failed: {failed[0][0]}")
        # nginx writes its log line when the response is done: give it a moment.
        time.sleep(0.2)
        sent = origin_bytes(bench) - before
        print(f"| {title} | {wall:.2f} s | {mib(sent)} | {sent / size:.2f} |", flush=True)


# BENCH_CASES names: what each measures, and its runner (which starts the servers it needs).
CASES = {
    "verified": ("BENCH_MB from nginx, verified, to /dev/null; vs curl (| openssl, | sha256sum)", run_verified),
    "startup": ("200 bytes from nginx over http and https (startup cost); vs curl and BENCH_ORIGINAL_PTEX", run_startup),
    "rate-limited": ("256 MiB (at most BENCH_MB) from nginx at 20 MB/s per connection; vs curl, aria2c", run_rate_limited),
    "ranged-s3": ("256 MiB (at most BENCH_MB) from s3s-fs; ptex on one connection vs in parts, vs curl --aws-sigv4", run_ranged_s3),
    "rss": ("ptex's peak RSS over http, file, s3, gs, ftp (BENCH_SLOW_MB for gs, ftp)", run_rss),
    "scie-tail": ("an override file checked against a BENCH_SCIE_MB MiB scie's tail; vs reading it whole", run_scie_tail),
    "fleet": ("BENCH_FLEET hosts, 64 MiB (at most BENCH_MB) at once: origin bytes with and without a cache", run_fleet),
}


def chosen_cases():
    wanted = [c.strip() for c in os.environ.get("BENCH_CASES", "").split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CASES]
    if unknown:
        lines = "\n".join(f"  {name:13} {what}" for name, (what, _) in CASES.items())
        sys.exit(f"bench: unknown BENCH_CASES {', '.join(unknown)}; the cases are:\n{lines}")
    return [c for c in CASES if not wanted or c in wanted]


def on_signal(signum, _frame):
    # Raise, so that the `finally` below kills the servers and removes the temp dir.
    raise SystemExit(128 + signum)


def main():
    cases = chosen_cases()
    if not os.path.exists(PTEX):
        sys.exit(f"bench: {PTEX} is missing (benches/run builds it)")
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    bench = Bench()
    ok = True
    try:
        print(f"# ptex benchmark: loopback servers, {os.cpu_count()} cores\n")
        print(f"cases: {', '.join(cases)}; BENCH_MB={MB}, BENCH_SLOW_MB={SLOW_MB}, BENCH_RUNS={RUNS}\n")
        size_bytes = os.path.getsize(PTEX)
        print(f"release ptex: {size_bytes:,} bytes ({size_bytes / ORIGINAL_PTEX_BYTES:.2f} x the original ptex 1.7.0's {ORIGINAL_PTEX_BYTES:,})", flush=True)
        for name in cases:
            ok = CASES[name][1](bench) is not False and ok
    except BenchError as e:
        sys.exit(f"bench: {e}")
    except KeyboardInterrupt:
        sys.exit("bench: interrupted")
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        bench.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
