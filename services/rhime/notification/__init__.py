"""The notification component: what others did to me, grouped, with an unread count."""
