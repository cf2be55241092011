"""The live demo: three oracles measure a real local service, and the contract pays from their reports.

    .venv/bin/python scripts/demo.py [--period 20] [--down 4]

It starts anvil (a block a second) and a small HTTP service on 127.0.0.1, deploys the factory and a test dollar,
creates a one-service agreement with short periods, funds it, and runs three `sla-oracle run` daemons. The service
goes down for a few seconds in the first period; the oracles measure it, sign, gather a quorum and settle. The
customer's payout is printed, and one oracle's evidence bundle is verified. Everything runs under build/demo and
is stopped at the end.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from oracle.localnet import LocalNet  # noqa: E402
from smartsla.agreement import PeriodState  # noqa: E402
from smartsla.units import format_bps, format_ppm, format_token_amount  # noqa: E402

console = Console(highlight=False)


class Service:
    """A health endpoint that answers 200 "ok", or 503 while it is down."""

    def __init__(self) -> None:
        self.down = False
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                status, body = (503, b"down\n") if service.down else (200, b"ok\n")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/health"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main(period: int = 20, down: int = 3) -> int:
    work = ROOT / "build" / "demo"
    shutil.rmtree(work, ignore_errors=True)
    service = Service()
    net = LocalNet(work)
    try:
        console.print(f"[bold]1.[/] a local chain (anvil) at {net.node.url}, and the provider's service at {service.url}")
        start = int(time.time()) + 15  # the oracles start (and probe) before the first period begins
        text = net.one_service_terms("demo-api", service.url, start, period, 3, keyword="ok", down_after=2,
                                     schedule=(("99.9%", "10%"), ("95.0%", "25%"), ("80.0%", "100%")))
        terms, _, agreement = net.create_agreement(text)
        console.print(f"[bold]2.[/] the provider created agreement {agreement.address}: api at 99.9% over "
                      f"{period}-second periods; the customer escrowed one period's fee of 1000 tUSD")
        for i in (1, 2, 3):
            net.start_oracle(i)
        console.print("[bold]3.[/] three independent oracles started; each probes the service twice a second")

        outage_at = start + period // 3
        with console.status("period 0 running, the service is up") as status:
            while time.time() < outage_at:
                time.sleep(0.2)
            service.down = True
            status.update(f"the service is DOWN for {down} seconds")
            time.sleep(down)
            service.down = False
            end = agreement.period_end(0)
            while time.time() < end:
                status.update(f"service back up; period 0 ends in {end - time.time():.0f} s")
                time.sleep(0.2)
            deadline = end + 60
            while time.time() < deadline and agreement.period(0).state == PeriodState.FUNDED:
                status.update("the oracles compute the period, sign, gather a quorum and settle")
                time.sleep(0.5)
        record = agreement.period(0)
        if record.state != PeriodState.SETTLED:
            console.print("[red]period 0 was not settled in time; oracle logs are in build/demo/[/]")
            return 1
        event = agreement.events("PeriodSettled")[0]["args"]
        reports = agreement.events("ReportAccepted")
        console.print(f"[bold]4.[/] settled by {len(reports)} signed reports: "
                      + ", ".join(f"{r['args']['oracle'][:10]}… measured {format_ppm(r['args']['values'][0])}"
                                  for r in reports))
        table = Table(title="what the contract paid for period 0 (tUSD)")
        for col in ("measured (median)", "credit", "to the customer", "to the provider"):
            table.add_column(col, justify="right")
        table.add_row(format_ppm(event["values"][0]), format_bps(record.credit_bps),
                      format_token_amount(record.compensation, 6), format_token_amount(record.provider_payout, 6))
        console.print(table)
        bundle = work / "evidence-1" / agreement.address / "period-0"
        verify = subprocess.run([sys.executable, "-m", "oracle.cli", "evidence", "verify", str(bundle)],
                                capture_output=True, text=True, cwd=ROOT)
        console.print(f"[bold]5.[/] oracle-1's evidence bundle ({bundle.relative_to(ROOT)}): "
                      f"{verify.stdout.strip().splitlines()[0] if verify.stdout.strip() else verify.stderr.strip()}")
        return 0 if verify.returncode == 0 else 1
    finally:
        net.close()
        service.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--period", type=int, default=20, help="period length in seconds (default 20)")
    parser.add_argument("--down", type=int, default=3, help="seconds the service is down (default 3)")
    args = parser.parse_args()
    sys.exit(main(args.period, args.down))
