"""The `rumor` command line."""

from __future__ import annotations

import click

from rumor_host import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rumor")
def main() -> None:
    """Rumor: gossip-mesh firmware for MicroPython radio boards, and its host tools."""


from rumor_host.cmd_boards import boards_cmd  # noqa: E402
from rumor_host.flash import flash_cmd  # noqa: E402

main.add_command(boards_cmd)
main.add_command(flash_cmd)

from rumor_host.demo import demo_cmd  # noqa: E402
from rumor_host.deploy import deploy_cmd  # noqa: E402
from rumor_host.inject import inject_cmd  # noqa: E402
from rumor_host.logs import logs_cmd  # noqa: E402
from rumor_host.report import report_cmd  # noqa: E402
from rumor_host.swarm import swarm_cmd  # noqa: E402

main.add_command(swarm_cmd)
main.add_command(deploy_cmd)
main.add_command(inject_cmd)
main.add_command(logs_cmd)
main.add_command(report_cmd)
main.add_command(demo_cmd)

from rumor_host.config_cmd import config_cmd  # noqa: E402
from rumor_host.listen import listen_cmd  # noqa: E402
from rumor_host.nodes import nodes_cmd  # noqa: E402
from rumor_host.ports import ports_cmd  # noqa: E402
from rumor_host.reset import reset_cmd  # noqa: E402
from rumor_host.stats import stats_cmd  # noqa: E402

for _c in (listen_cmd, ports_cmd, nodes_cmd, stats_cmd, config_cmd, reset_cmd):
    main.add_command(_c)

from rumor_host.sim.cli import sim  # noqa: E402

main.add_command(sim)

from rumor_host.bridge import bridge_cmd  # noqa: E402

main.add_command(bridge_cmd)

if __name__ == "__main__":
    main()
