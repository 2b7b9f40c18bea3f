// Conversions between our plain TypeScript types and the protocol messages.

import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type FileInfo as PbFileInfo,
  FileInfoSchema,
  type Record as PbRecord,
  RecordSchema,
} from "./gen/connectors_pb.ts";
import type { ExportEntry, FileInfo, HostOptions, ImportEntry } from "./connector.ts";
import { isDir } from "./mode.ts";

export interface PbOptions {
  hostname: string;
  os: string;
  arch: string;
  cwd: string;
  maxconcurrency: bigint;
  excludes: string[];
  noxattr: boolean;
}

export function hostOptions(o: PbOptions | undefined): HostOptions {
  return {
    hostname: o?.hostname ?? "",
    os: o?.os ?? "",
    arch: o?.arch ?? "",
    cwd: o?.cwd ?? "",
    maxConcurrency: Number(o?.maxconcurrency ?? 0n),
    excludes: o?.excludes ?? [],
    noXattr: o?.noxattr ?? false,
  };
}

export function fileInfoToPb(fi: FileInfo): PbFileInfo {
  return create(FileInfoSchema, {
    name: fi.name,
    size: BigInt(Math.max(0, Math.floor(fi.size))),
    mode: fi.mode >>> 0,
    modTime: timestampFromDate(fi.modTime),
    dev: BigInt(fi.dev ?? 0),
    ino: BigInt(fi.ino ?? 0),
    uid: BigInt(fi.uid ?? 0),
    gid: BigInt(fi.gid ?? 0),
    nlink: fi.nlink ?? 1,
    username: fi.username ?? "",
    groupname: fi.groupname ?? "",
    flags: fi.flags ?? 0,
  });
}

export function fileInfoFromPb(fi: PbFileInfo): FileInfo {
  return {
    name: fi.name,
    size: Number(fi.size),
    mode: fi.mode,
    modTime: fi.modTime ? timestampDate(fi.modTime) : new Date(0),
    dev: Number(fi.dev),
    ino: Number(fi.ino),
    uid: Number(fi.uid),
    gid: Number(fi.gid),
    nlink: fi.nlink,
    username: fi.username,
    groupname: fi.groupname,
    flags: fi.flags,
  };
}

export function entryToRecord(e: ImportEntry): PbRecord {
  return create(RecordSchema, {
    pathname: e.pathname,
    hasReader: e.open !== undefined && !e.error,
    error: e.error ?? "",
    target: e.target ?? "",
    fileInfo: e.fileInfo && !e.error ? fileInfoToPb(e.fileInfo) : undefined,
  });
}

export function recordToEntry(r: PbRecord): ExportEntry {
  const fileInfo = r.fileInfo ? fileInfoFromPb(r.fileInfo) : undefined;
  return {
    pathname: r.pathname,
    fileInfo,
    target: r.target || undefined,
    isDir: fileInfo ? isDir(fileInfo.mode) : false,
    error: r.error || undefined,
  };
}
