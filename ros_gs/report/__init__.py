"""One static HTML report of a replayed graph (ros-gs report): what people look at, not read."""

from ros_gs.report.graph import graph_report
from ros_gs.report.html import Figure, Section, Table, write_html

__all__ = ["Figure", "Section", "Table", "graph_report", "write_html"]
