package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parleyhq/parley/app"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/id"
	"github.com/parleyhq/parley/storage"
	"github.com/parleyhq/parley/users"
)

const userUsage = `usage: parley user <command>
  add [-admin] [-password P] <localpart>   create an account (password read from stdin without -password)
  list                                     list accounts
  reset-password [-password P] <user>      set a new password and log every device out
  deactivate <user>                        deactivate an account
  token-add [-uses N] [-expires 24h] [token]  create a registration token (random without one)
  token-list                               list registration tokens
`

// runUser handles `parley user …`: account administration directly on the
// database, through the users domain, with no server running.
func runUser(ctx context.Context, cfg *config.Config, args []string) error {
	return userCommand(ctx, cfg, args, os.Stdin, os.Stdout)
}

func userCommand(ctx context.Context, cfg *config.Config, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", userUsage)
	}
	logger := slog.Default() // configured by run
	db, err := app.OpenMigratedDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := users.New(users.Config{ServerName: cfg.ServerName, RegistrationMode: cfg.Registration.Mode},
		storage.NewAccounts(db.Pool).UsersStores(), logger)
	if err != nil {
		return err
	}
	defer svc.Close(ctx)

	cmd, rest := args[0], args[1:]
	flags := flag.NewFlagSet("parley user "+cmd, flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	admin := flags.Bool("admin", false, "")
	password := flags.String("password", "", "")
	uses := flags.Int("uses", -1, "")
	expires := flags.Duration("expires", 0, "")
	if err := flags.Parse(rest); err != nil {
		return usagef("%v\n%s", err, userUsage)
	}
	operand := func() (string, error) {
		if flags.NArg() != 1 {
			return "", usagef("parley user %s takes one argument\n%s", cmd, userUsage)
		}
		return flags.Arg(0), nil
	}
	readPassword := func() (string, error) {
		if *password != "" {
			return *password, nil
		}
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", usagef("no password: give -password or one line on stdin")
		}
		return line, nil
	}

	switch cmd {
	case "add":
		name, err := operand()
		if err != nil {
			return err
		}
		pw, err := readPassword()
		if err != nil {
			return err
		}
		uid, err := svc.AddUser(ctx, name, pw, *admin)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, uid)
	case "list":
		accounts, err := svc.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tADMIN\tGUEST\tDEACTIVATED\tCREATED")
		for _, a := range accounts {
			fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%s\n", a.UserID, a.IsAdmin, a.IsGuest, a.Deactivated, a.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "reset-password":
		name, err := operand()
		if err != nil {
			return err
		}
		pw, err := readPassword()
		if err != nil {
			return err
		}
		if err := svc.ResetPassword(ctx, userArg(name, cfg.ServerName), pw); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "password reset; every device logged out")
	case "deactivate":
		name, err := operand()
		if err != nil {
			return err
		}
		if err := svc.DeactivateUser(ctx, userArg(name, cfg.ServerName)); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "deactivated")
	case "token-add":
		if flags.NArg() > 1 {
			return usagef("%s", userUsage)
		}
		var usesAllowed *int
		if *uses >= 0 {
			usesAllowed = uses
		}
		var expiry time.Time
		if *expires > 0 {
			expiry = time.Now().Add(*expires)
		}
		t, err := svc.AddRegistrationToken(ctx, flags.Arg(0), usesAllowed, expiry)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, t.Token)
	case "token-list":
		tokens, err := svc.RegistrationTokens(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TOKEN\tUSES ALLOWED\tPENDING\tCOMPLETED\tEXPIRES")
		for _, t := range tokens {
			allowed, exp := "unlimited", "never"
			if t.UsesAllowed != nil {
				allowed = fmt.Sprint(*t.UsesAllowed)
			}
			if !t.ExpiresAt.IsZero() {
				exp = t.ExpiresAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", t.Token, allowed, t.Pending, t.Completed, exp)
		}
		return tw.Flush()
	default:
		return usagef("unknown command %q\n%s", cmd, userUsage)
	}
	return nil
}

// userArg accepts a full user id or a localpart of this server.
func userArg(s string, server id.ServerName) id.UserID {
	if strings.HasPrefix(s, "@") {
		return id.UserID(s)
	}
	return id.NewUserID(strings.ToLower(s), server)
}
