/** The SSH adapter's public surface: the gateway listener, and the command-line classifier for the CLI and tools. */
export { sshGatewayAdapter, type SshGatewayOptions } from './ssh-gateway.ts';
export { classifyCommandLine, type Classification, type CommandLine, type ShellCommand } from './command-line.ts';
