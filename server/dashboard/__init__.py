"""The staff dashboard (bảng điều khiển): server-rendered pages for ward staff, doctors and
administrators. ``views`` holds the thin HTTP handlers, ``service`` the scoped queries and
statistics, ``charts`` the inline SVG, ``i18n`` the Vietnamese/English texts."""
