"""What people look at: the ipywidgets dashboards, their data layer, the plots, and status.

Readers only: nothing here writes to a run's workspace except ``plot`` (PNG files) and the
Approve button (an approval record)."""
