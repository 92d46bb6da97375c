"""ptex's benchmark: medians and ratios against curl and friends, peak RSS, binary size.

Starts nginx on a free loopback port (sendfile on) serving generated files, then runs each
command alternately BENCH_RUNS times. Prints one markdown table per case.
"""

import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PTEX = os.path.join(ROOT, "target", "release", "ptex")
MB = int(os.environ.get("BENCH_MB", "1024"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
ORIGINAL_PTEX_BYTES = 6_377_624


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_file(path, size):
    """Incompressible bytes, written in 1 MiB blocks; returns the sha256."""
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def start_nginx(root, port):
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        location /limited/ {{ alias {root}/www/; limit_rate 20m; }}
    }}
}}
""")
    os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", root], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("bench: nginx did not start")


def timed(command, env):
    """Wall time and peak RSS (KiB, of the largest process measured by GNU time)."""
    wrapped = ["/usr/bin/time", "-f", "%M", "sh", "-c", command]
    start = time.perf_counter()
    done = subprocess.run(wrapped, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench: `{command}` failed: {done.stderr.strip()}")
    rss = int(done.stderr.strip().splitlines()[-1])
    return wall, rss


def case(title, commands, env, baseline):
    results = {name: [] for name, _ in commands}
    rss = {name: 0 for name, _ in commands}
    for _ in range(RUNS):
        for name, command in commands:
            wall, peak = timed(command, env)
            results[name].append(wall)
            rss[name] = max(rss[name], peak)
    base = statistics.median(results[baseline])
    print(f"\n### {title} ({RUNS} runs each, alternating)\n")
    print("| command | median wall time | ratio to baseline | peak RSS |")
    print("|---|---|---|---|")
    for name, _ in commands:
        median = statistics.median(results[name])
        cell = name.replace("|", "\\|")
        print(f"| {cell} | {median:.3f} s | {median / base:.2f} x | {rss[name] / 1024:.1f} MiB |")


def main():
    if not shutil.which("nginx"):
        sys.exit("bench: nginx is missing (benches/run installs it)")
    work = tempfile.mkdtemp(prefix="ptex-bench-")
    # nginx's workers run as an unprivileged user: they must be able to read the files.
    os.chmod(work, 0o755)
    www = os.path.join(work, "www")
    os.makedirs(www, mode=0o755)
    size = MB << 20
    big_sha = make_file(os.path.join(www, "big.bin"), size)
    small_sha = make_file(os.path.join(www, "small.bin"), 200)
    port = free_port()
    nginx = start_nginx(work, port)
    env = dict(os.environ, PTEX_CACHE_DIR=os.path.join(work, "cache"))
    try:
        def lift(name, sha, nbytes):
            path = os.path.join(work, f"{name}.json")
            with open(path, "w") as f:
                f.write(
                    '{"scie": {"lift": {"files": [{"name": "%s", "size": %d, "hash": "%s"}]}},'
                    ' "ptex": {"%s": "http://127.0.0.1:%d/%s"}}' % (name, nbytes, sha, name, port, name)
                )
            return path

        url = f"http://127.0.0.1:{port}/big.bin"
        big = lift("big.bin", big_sha, size)
        small = lift("small.bin", small_sha, 200)
        print(f"# ptex benchmark: {MB} MiB over loopback nginx (sendfile), {os.cpu_count()} cores\n")
        size_bytes = os.path.getsize(PTEX)
        print(f"release ptex: {size_bytes:,} bytes ({size_bytes / ORIGINAL_PTEX_BYTES:.2f} x the original ptex 1.7.0's {ORIGINAL_PTEX_BYTES:,})")
        case(
            f"{MB} MiB, verified, to /dev/null",
            [
                ("curl -s -o /dev/null (no verification)", f"curl -s -o /dev/null {url}"),
                ("ptex lift.json big.bin > /dev/null (verified)", f"{PTEX} -s {big} big.bin > /dev/null"),
                ("curl -s URL | openssl dgst -sha256", f"curl -s {url} | openssl dgst -sha256"),
                ("curl -s URL | sha256sum", f"curl -s {url} | sha256sum"),
            ],
            env,
            "curl -s -o /dev/null (no verification)",
        )
        case(
            "200 bytes, verified (startup cost)",
            [
                ("curl -s -o /dev/null", f"curl -s -o /dev/null http://127.0.0.1:{port}/small.bin"),
                ("ptex lift.json small.bin", f"{PTEX} -s {small} small.bin > /dev/null"),
            ],
            env,
            "curl -s -o /dev/null",
        )
        part = min(MB, 256)
        part_sha = make_file(os.path.join(www, "part.bin"), part << 20)
        limited = f"http://127.0.0.1:{port}/limited/part.bin"
        case(
            f"{part} MiB from a server limiting each connection to 20 MB/s",
            [
                ("curl (one stream)", f"curl -s -o /dev/null {limited}"),
                (
                    "aria2c -x8 -s8",
                    f"cd {work} && aria2c -q -x8 -s8 -k1M --allow-overwrite=true -o got.bin {limited}",
                ),
                ("ptex (verified)", f"{PTEX} -s --sha256 {part_sha} {limited} > /dev/null"),
            ],
            env,
            "curl (one stream)",
        )
    finally:
        nginx.terminate()
        nginx.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
