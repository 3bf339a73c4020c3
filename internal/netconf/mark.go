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
// tc_healthcheck sends through the tunnel of the real the mark names. Its
// packets leave with a TTL (hop limit) of 1, which the tunnel's outer
// header does not spend: the real accepts them only for a VIP of its own,
// and one that lost its VIP cannot forward them to the router and on to
// another real that would answer in its place. The dial gives up when ctx
// ends.
func (n *Namespace) DialMarked(ctx context.Context, network, addr string, mark uint32) (net.Conn, error) {
	d := net.Dialer{Control: func(family, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
			if serr != nil {
				return
			}
			if family == "tcp6" || family == "udp6" {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, 1)
			}
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
		return nil, fmt.Errorf("%s: %w (mark %#x)", n.name, err, mark)
	}
	return c, nil
}
