"""Runs a command (an argument vector, no shell) on a pseudo-terminal COLUMNS wide and copies what the
terminal shows to stdout; exits with the command's status. Usage: pty-run.py COLUMNS ARGV..."""
import fcntl
import os
import pty
import struct
import sys
import termios

columns = int(sys.argv[1])
argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    # Sized before the command starts: it reads the width once, at its first write.
    fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    os.execvp(argv[0], argv)
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:  # EIO: the command and everything it started closed the terminal
        break
    if not data:
        break
    sys.stdout.buffer.write(data)
sys.stdout.buffer.flush()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
