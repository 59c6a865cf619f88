"""The areas perfloop watches, one module each, and the registry the stages ask.

:mod:`perfloop.areas.base` is the protocol an area implements; :mod:`perfloop.areas.view` the
window as areas read it; :mod:`perfloop.areas.registry` the registered areas (the five built
in - :mod:`~perfloop.areas.memory`, :mod:`~perfloop.areas.latency`,
:mod:`~perfloop.areas.throughput`, :mod:`~perfloop.areas.cache`,
:mod:`~perfloop.areas.attribution` - and any that a distribution adds through the
``perfloop.areas`` entry-point group).
"""
