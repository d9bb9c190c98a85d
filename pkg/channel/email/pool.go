package email

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// ErrClosed is what a send on a closed Provider fails with.
var ErrClosed = errors.New("email provider is closed")

// conn is one open SMTP session.
type conn struct {
	smtp *smtp.Client
	// raw is the connection under smtp, where a send sets its deadline.
	raw net.Conn
	// idleSince is when the session was last given back to the pool.
	idleSince time.Time
}

// quit ends the session politely, but never waits long for a relay that does not answer.
func (c *conn) quit() {
	_ = c.raw.SetDeadline(time.Now().Add(5 * time.Second))
	if err := c.smtp.Quit(); err != nil {
		_ = c.raw.Close()
	}
}

// pool keeps at most size sessions, in use or idle. A session idle longer than idle is
// closed instead of reused: relays end idle sessions, and a send that finds its session dead
// costs more than a fresh one.
type pool struct {
	slots chan struct{} // one token per session in use or being opened
	idle  time.Duration
	dial  func(ctx context.Context) (*conn, error)
	now   func() time.Time

	mu     sync.Mutex
	free   []*conn // idle sessions, most recently used last
	closed bool
	reaper *time.Timer
	wg     sync.WaitGroup // QUITs under way
}

func newPool(size int, idle time.Duration, dial func(ctx context.Context) (*conn, error)) *pool {
	return &pool{slots: make(chan struct{}, size), idle: idle, dial: dial, now: time.Now}
}

// get returns a session, idle or newly opened, and whether it is new. It waits for a free
// slot while size sessions are in use.
func (p *pool) get(ctx context.Context) (*conn, bool, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.slots
		return nil, false, ErrClosed
	}
	p.expireLocked()
	var c *conn
	if n := len(p.free); n > 0 {
		c, p.free = p.free[n-1], p.free[:n-1]
	}
	p.mu.Unlock()
	if c != nil {
		return c, false, nil
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, false, err
	}
	return c, true, nil
}

// put gives c back; a session that is not healthy is closed instead.
func (p *pool) put(c *conn, healthy bool) {
	defer func() { <-p.slots }()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !healthy {
		// The session is in an unknown state (mid-DATA, or the relay said 421): a QUIT
		// would only wait for an answer that is not coming.
		_ = c.raw.Close()
		return
	}
	if p.closed {
		// Close has stopped waiting for QUITs: end this one on its own.
		go c.quit()
		return
	}
	c.idleSince = p.now()
	p.free = append(p.free, c)
	if p.reaper == nil {
		p.reaper = time.AfterFunc(p.idle, p.reap)
	}
}

// reap closes sessions that sat idle too long, so a quiet pod does not hold sessions open
// until the relay drops them.
func (p *pool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reaper = nil
	if p.closed {
		return
	}
	p.expireLocked()
	if len(p.free) > 0 {
		p.reaper = time.AfterFunc(p.idle, p.reap)
	}
}

// expireLocked closes the idle sessions older than p.idle.
func (p *pool) expireLocked() {
	now := p.now()
	keep := p.free[:0]
	for _, c := range p.free {
		if now.Sub(c.idleSince) >= p.idle {
			p.quitLocked(c)
			continue
		}
		keep = append(keep, c)
	}
	clear(p.free[len(keep):])
	p.free = keep
}

// quitLocked ends c in the background: a QUIT must not hold up a send. Only while the pool
// is open, so that close's Wait never races an Add.
func (p *pool) quitLocked(c *conn) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c.quit()
	}()
}

// close ends the idle sessions and marks the pool closed; sessions in use are ended when
// they come back. It waits for the QUITs it started.
func (p *pool) close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.reaper != nil {
			p.reaper.Stop()
		}
		for _, c := range p.free {
			p.quitLocked(c)
		}
		p.free = nil
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}
