package netconf

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// DialMarked opens a connection from inside the namespace whose socket
// carries mark (SO_MARK): a health check, which the katran's
// tc_healthcheck sends through the tunnel of the real the mark names. The
// dial gives up when ctx ends.
func (n *Namespace) DialMarked(ctx context.Context, network, addr string, mark uint32) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); err != nil {
			return err
		}
		return serr
	}}
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s %s (mark %#x): %w", n.name, network, addr, mark, err)
	}
	return c, nil
}
