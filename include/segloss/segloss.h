/*
 * segloss.h - umbrella header of libsegloss.
 *
 * libsegloss evaluates semantic-segmentation losses and metrics exactly as the bubbliiiing
 * PyTorch training code does (and in a "standard" form that fixes its quirks), and decodes the
 * files clients send. It knows nothing of HTTP or JSON.
 */
#ifndef SEGLOSS_SEGLOSS_H
#define SEGLOSS_SEGLOSS_H

#define SEGLOSS_VERSION "0.1.0"

#include "segloss/decode.h"
#include "segloss/errors.h"
#include "segloss/limits.h"
#include "segloss/loss.h"
#include "segloss/tensor.h"

#endif
