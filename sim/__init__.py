"""MuJoCo robots, tasks and scripted experts; importing `sim` registers the `realrl/*` gymnasium ids."""

from sim.registration import register_all

register_all()
