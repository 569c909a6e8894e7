"""The hardware edge of tagd: scanners (evdev HID, serial, terminal) and their behavioural fakes."""
