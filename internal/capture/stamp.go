package capture

import (
	"encoding/binary"
	"errors"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Packets are stamped by the kernel as they pass the device, but only
// while some socket anywhere has asked for stamps, and the first such
// request turns stamping on later, from a kernel work item
// (net_enable_timestamp). A packet that passed before then has no stamp.
// The sockets therefore ask through SO_TIMESTAMPING, which reports such a
// packet as unstamped, where SO_TIMESTAMPNS would stamp it when it is
// read: that once put a capture's first packet after later ones, and
// would skew a trace's clock alignment.
const stampFlags = unix.SOF_TIMESTAMPING_RX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE

func askForStamps(fd int) error {
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, stampFlags)
}

// stamp reads the kernel's software stamp (struct scm_timestamping's
// first timespec); ok is false for a packet that passed unstamped.
func stamp(oob []byte) (t time.Time, ok bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_TIMESTAMPING {
			continue
		}
		var ts unix.Timespec
		if _, err := binary.Decode(m.Data, binary.NativeEndian, &ts); err != nil || ts.Sec == 0 && ts.Nsec == 0 {
			return time.Time{}, false
		}
		return time.Unix(ts.Unix()), true
	}
	return time.Time{}, false
}

// stampProbeLimit bounds the wait for stamping.
const stampProbeLimit = 2 * time.Second

// stampingOn reports whether the kernel stamps packets, waiting up to
// wait for it: the sockets open may have just asked. It sends datagrams
// to itself over the loopback of the caller's namespace on a socket that
// reports stamps without asking for them, so a stamp on one shows
// stamping is on for everybody. Without a loopback to probe, it cannot
// tell and says no.
func stampingOn(wait time.Duration) bool {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return false
	}
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPING, unix.SOF_TIMESTAMPING_SOFTWARE)
	}); err != nil || serr != nil {
		return false
	}
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(3*16))
	for deadline := time.Now().Add(wait); ; time.Sleep(time.Millisecond) {
		if _, err := conn.WriteToUDP([]byte{0}, conn.LocalAddr().(*net.UDPAddr)); err != nil {
			return false
		}
		_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, oobn, _, _, err := conn.ReadMsgUDP(buf, oob)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
		case err != nil:
			return false
		default:
			if _, ok := stamp(oob[:oobn]); ok {
				return true
			}
		}
		if !time.Now().Before(deadline) {
			return false
		}
	}
}
